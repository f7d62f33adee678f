"""Flower ClientApp: parse the message, call :mod:`fedrec.client.task`, reply.

The reply carries only the shared parameters (item factors and biases, after local DP-SGD)
and a few scalars. Private user factors and the privacy ledger stay in the client's state.

With user-level DP placed on the client (``user-dp = local`` or ``secagg``) the update is
clipped and noised here, after the ledger has recorded the round: all of the noise
(``local``; the reply is the global model plus the noised update) or this client's share of
it (``secagg``; the reply is the noised update, masked by Flower's ``secaggplus_mod`` via
:mod:`fedrec.client.secagg`). The training loss and step count are then not sent: they are
computed from the records without noise.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from fedrec.client.faults import inject_faults
from fedrec.client.ledger import UserRound, total_user_epsilon, user_round_for
from fedrec.client.secagg import MIN_SURVIVORS_KEY, secagg_mod
from fedrec.client.state import ClientStateStore
from fedrec.client.task import (
    client_seed,
    load_client_data,
    local_evaluate,
    local_train,
    state_dir,
)
from fedrec.shared.config import FedRecConfig, resolve_config
from fedrec.shared.device import resolve_device
from fedrec.shared.errors import PrivacyBudgetExceeded
from fedrec.shared.serialization import arrays_to_numpy, numpy_to_arrays
from fedrec.shared.user_accounting import resolve_delta
from fedrec.shared.user_dp import noise_rng, noise_std, privatize

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


def noised_update(
    cfg: FedRecConfig,
    shared: dict[str, np.ndarray],
    updated: dict[str, np.ndarray],
    config: ConfigRecord,
) -> dict[str, np.ndarray]:
    """What the client sends under ``user-dp`` local/secagg: its clipped, noised update.

    Every coordinate of every shared tensor gets noise, so the reply does not reveal which
    items the user touched. ``local``: the global model plus the update with all the noise;
    ``secagg``: the update itself with this client's share (the secure sum adds them up).
    """
    privacy = cfg.privacy
    survivors = _secagg_survivors(cfg, config)
    std = noise_std(
        privacy.user_dp, privacy.user_noise_multiplier, privacy.user_clip, survivors=survivors
    )
    delta = {k: updated[k] - shared[k] for k in updated}
    noised, _ = privatize(delta, privacy.user_clip, std, noise_rng())
    if privacy.user_dp == "secagg":
        return noised
    return {k: (shared[k] + noised[k]).astype(np.float32) for k in noised}


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

    def _setup(msg: Message, context: Context) -> tuple[FedRecConfig, Any, ClientStateStore, int]:
        cfg = resolve_config(context.run_config, overrides)
        pid, num, node_state = _node(context)
        data = load_client_data(cfg, pid, num)
        store = ClientStateStore(state_dir(cfg, pid, node_state))
        return cfg, data, store, pid

    # secagg_mod runs Flower's SecAgg+ stages (and passes every other message through).
    @app.train(mods=[secagg_mod])
    def train(msg: Message, context: Context) -> Message:
        t0 = time.perf_counter()
        cfg, data, store, pid = _setup(msg, context)
        config = msg.content.config_records["config"]
        _secagg_survivors(cfg, config)  # refuses a secagg run's round outside SecAgg+
        user_round = _user_round(cfg, config, _node(context)[1])
        server_round = _config_int(config, "server-round")
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
                    "user-epsilon": total_user_epsilon(state),
                }
            )
            arrays = ArrayRecord()
            if cfg.privacy.user_dp == "secagg":
                # Still add this client's noise share to the secure sum (a zero update),
                # so that the others' noise is not short by it.
                arrays = numpy_to_arrays(noised_update(cfg, shared, shared, config))
            content = RecordDict({"arrays": arrays, "metrics": refused})
            return Message(content=content, reply_to=msg)
        metrics = {
            "weight": 1.0,  # unweighted mean: example counts would leak dataset sizes
            "train-loss": result.loss,
            "steps": float(result.steps),
            "epsilon": float(result.epsilon if result.epsilon is not None else -1.0),
            "seconds": time.perf_counter() - t0,
        }
        if cfg.privacy.user_dp != "off":
            # Computed from the records without user-level noise: the loss, and the number
            # of steps (it follows the number of records).
            del metrics["train-loss"], metrics["steps"]
        if user_round is not None:
            updated = noised_update(cfg, shared, updated, config)
            metrics["user-epsilon"] = total_user_epsilon(store.load())
        content = RecordDict({"arrays": numpy_to_arrays(updated), "metrics": MetricRecord(metrics)})
        return Message(content=content, reply_to=msg)

    @app.evaluate()
    def evaluate(msg: Message, context: Context) -> Message:
        cfg, data, store, pid = _setup(msg, context)
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
