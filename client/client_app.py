"""Flower ClientApp: parse the message, call :mod:`fedrec.client.task`, reply.

The reply carries only the shared parameters (item factors and biases, after local DP-SGD)
and a few scalars. Private user factors and the privacy ledger stay in the client's state.

With user-level DP placed on the client (``user-dp = local`` or ``secagg``) the update is
clipped and noised here, after the ledger has recorded the round: all of the noise
(``local``; the reply is the global model plus the noised update) or this client's share of
it (``secagg``; the reply is the noised update, masked by Flower's ``secaggplus_mod`` via
:mod:`fedrec.client.secagg`). Under any DP only the update and ε values leave the client
(:func:`fedrec.client.task.train_metrics`): no loss, step count or timing, which are
computed from the records without noise; and it refuses to evaluate unless the run asked
for federated evaluation, whose metrics no guarantee covers.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from fedrec.client.faults import inject_faults
from fedrec.client.secagg import MIN_SURVIVORS_KEY, secagg_mod
from fedrec.client.state import ClientStateStore
from fedrec.client.task import (
    client_seed,
    load_client_data,
    local_evaluate,
    local_train,
    noised_update,
    state_dir,
    train_metrics,
)
from fedrec.shared.config import FedRecConfig, resolve_config
from fedrec.shared.device import resolve_device
from fedrec.shared.errors import ConfigError, PrivacyBudgetExceeded
from fedrec.shared.privacy import UserRound, resolve_delta, user_round_for
from fedrec.shared.serialization import arrays_to_numpy, numpy_to_arrays

logger = logging.getLogger(__name__)


def _config_int(config: ConfigRecord, key: str, default: int | None = None) -> int:
    """An integer from the server's config record, or a clear error."""
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"server config {key!r} must be an integer, got {value!r}")
    return int(value)


def _committed(value: object) -> dict[str, tuple[int, int]] | None:
    """``["token:first:last", ...]`` from the server as {token: (first, last)}."""
    if not isinstance(value, list):
        return None
    spans: dict[str, tuple[int, int]] = {}
    for entry in value:
        parts = str(entry).split(":")
        if len(parts) == 3 and parts[0] and parts[1].isdigit() and parts[2].isdigit():
            spans[parts[0]] = (int(parts[1]), int(parts[2]))
    return spans


def _run_id(config: ConfigRecord) -> str | None:
    """The run identity the server sends (its RUN_ID; absent from older servers)."""
    value = config.get("run-id")
    if value is None:
        return None
    if not isinstance(value, str) or not value.isalnum():
        raise ValueError(f"server config 'run-id' must be an alphanumeric token, got {value!r}")
    return value


def _user_round(cfg: FedRecConfig, config: ConfigRecord, num_partitions: int) -> UserRound | None:
    """This round's user-level ledger entry, at the run's delta (sent by the server)."""
    delta = config.get("user-delta")
    if isinstance(delta, bool) or not isinstance(delta, int | float) or not 0 < delta < 1:
        delta = resolve_delta(cfg.privacy, num_partitions)
    return user_round_for(cfg.privacy, float(delta))


def _secagg_survivors(cfg: FedRecConfig, config: ConfigRecord) -> int | None:
    """Under ``user-dp = secagg``: the fewest survivors SecAgg+ unmasks for (else ``None``).

    A train message that did not come through SecAgg+ is refused before any training: the
    server could read the update.
    """
    if cfg.privacy.user_dp != "secagg":
        return None
    survivors = config.get(MIN_SURVIVORS_KEY)
    if isinstance(survivors, bool) or not isinstance(survivors, int) or survivors < 1:
        raise ValueError(
            "user-dp=secagg, but this train message did not come through SecAgg+ (no "
            f"{MIN_SURVIVORS_KEY}); refusing to send an update the server could read"
        )
    return survivors


def _node(context: Context) -> tuple[int, int, str | None]:
    cfg = context.node_config
    try:
        pid, num = int(cfg["partition-id"]), int(cfg["num-partitions"])
    except KeyError as missing:
        raise ValueError(
            f"node config lacks {missing}; start the SuperNode with "
            "--node-config 'partition-id=N num-partitions=M'"
        ) from None
    state = cfg.get("state-dir")
    return pid, num, str(state) if state else None


def build_client_app(overrides: dict[str, Any] | None = None) -> ClientApp:
    """A ClientApp whose settings are the run config with ``overrides`` on top."""
    app = ClientApp()
    # Opacus warns on every empty Poisson batch; with small per-user data sets those are
    # expected (and still accounted for), so the warning is noise in the federation's logs.
    logging.getLogger("opacus.data_loader").setLevel(logging.ERROR)

    def _setup(
        msg: Message, context: Context
    ) -> tuple[FedRecConfig, Any, ClientStateStore, int, str | None]:
        cfg = resolve_config(context.run_config, overrides)
        pid, num, node_state = _node(context)
        data = load_client_data(cfg, pid, num)
        run_id = _run_id(msg.content.config_records["config"])
        store = ClientStateStore(state_dir(cfg, pid, node_state, run_id))
        return cfg, data, store, pid, run_id

    # secagg_mod runs Flower's SecAgg+ stages (and passes every other message through).
    @app.train(mods=[secagg_mod])
    def train(msg: Message, context: Context) -> Message:
        t0 = time.perf_counter()
        cfg, data, store, pid, run_id = _setup(msg, context)
        config = msg.content.config_records["config"]
        survivors = _secagg_survivors(cfg, config)  # refuses secagg rounds outside SecAgg+
        user_round = _user_round(cfg, config, _node(context)[1])
        server_round = _config_int(config, "server-round")
        noise_seeds = (client_seed(cfg, pid), server_round)  # used only if reproducible
        # Which server process asks, and the round it resumed from: lets a client that
        # trained a round the server lost roll it back even if not sampled for its re-run.
        # Absent from older servers' messages (then only a repeated round is rolled back).
        resumed_from = config.get("resumed-from")
        incarnation = config.get("server-incarnation")
        committed = _committed(config.get("committed-incarnations"))
        inject_faults(cfg.faults, seed=cfg.data.seed, partition_id=pid, server_round=server_round)
        shared = arrays_to_numpy(msg.content["arrays"])
        try:
            updated, result = local_train(
                cfg,
                data,
                shared,
                store,
                server_round=server_round,
                seed=client_seed(cfg, pid),
                device=resolve_device(str(context.node_config.get("device", "auto"))),
                resumed_from=resumed_from if isinstance(resumed_from, int) else None,
                incarnation=incarnation if isinstance(incarnation, str) else None,
                committed=committed,
                user_round=user_round,
                run_id=run_id,
            )
        except PrivacyBudgetExceeded as refusal:
            # A refusal is an answer, not a failure: no update, and the reason.
            logger.info("partition %d: %s", pid, refusal)
            state = store.load()
            refused = MetricRecord(
                {
                    "weight": 1.0,
                    "budget-exhausted": 1.0,
                    "epsilon": float(state.epsilon if state else 0.0),
                    "user-epsilon": state.reported_user_epsilon if state else 0.0,
                }
            )
            arrays = ArrayRecord()
            if cfg.privacy.user_dp == "secagg":
                # Still add this client's noise share to the secure sum (a zero update),
                # so that the others' noise is not short by it.
                zero = noised_update(cfg, shared, shared, survivors=survivors, seeds=noise_seeds)
                arrays = numpy_to_arrays(zero)
            content = RecordDict({"arrays": arrays, "metrics": refused})
            return Message(content=content, reply_to=msg)
        user_epsilon = None
        if user_round is not None:
            updated = noised_update(cfg, shared, updated, survivors=survivors, seeds=noise_seeds)
            state = store.load()
            user_epsilon = state.reported_user_epsilon if state else 0.0
        metrics = train_metrics(cfg, result, time.perf_counter() - t0, user_epsilon=user_epsilon)
        content = RecordDict({"arrays": numpy_to_arrays(updated), "metrics": MetricRecord(metrics)})
        return Message(content=content, reply_to=msg)

    @app.evaluate()
    def evaluate(msg: Message, context: Context) -> Message:
        cfg, data, store, pid, _ = _setup(msg, context)
        if not cfg.federated_evaluation:
            # Metrics from the held-out records carry no noise: under DP they leave the
            # client only if the run explicitly asked for them (federated-evaluation=on).
            raise ConfigError(
                f"refusing federated evaluation: federated-evaluation="
                f"{cfg.federation.federated_evaluation} and DP is "
                f"{'on' if cfg.any_dp else 'off'} (set federated-evaluation=on to allow it; "
                "its metrics are not covered by any DP guarantee)"
            )
        config = msg.content.config_records["config"]
        metrics = local_evaluate(
            cfg,
            data,
            arrays_to_numpy(msg.content["arrays"]),
            store,
            k=_config_int(config, "k", 10),
            personalize_epochs=_config_int(config, "personalize-epochs", 0),
            seed=client_seed(cfg, pid),
        )
        # Coverage is a property of all users' lists together; a per-client value averages
        # to nonsense, so the server does not get it.
        metrics = {key: v for key, v in metrics.items() if not key.startswith("coverage")}
        metrics["weight"] = metrics.get("n_users", 0.0)
        return Message(content=RecordDict({"metrics": MetricRecord(metrics)}), reply_to=msg)

    return app


app = build_client_app()
