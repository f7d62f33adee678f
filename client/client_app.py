"""Flower ClientApp: parse the message, call :mod:`fedrec.client.task`, reply.

The reply carries only the global tensors after local DP-SGD (noised again under
``user-dp`` local or secagg) and a few scalars; what may leave the client, the budget
refusal and the evaluation refusal under DP are the task's decisions
(:func:`~fedrec.client.task.train_round`, :func:`~fedrec.client.evaluation.evaluate_round`).
Private user factors and the privacy ledger stay in the client's state.

The training and evaluation code (torch, and Opacus where a client trains alone) is
imported by the handlers that run it: ``fedrec simulate``'s server process builds this app
to hand it to the simulation engine and never trains.

A simulation worker's message names several simulated users (a cohort,
:mod:`fedrec.shared.cohort_messages`): it trains or evaluates each of them as its own client
(:mod:`fedrec.client.cohort`) and replies with one record pair per user.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator, Sequence
from typing import Any

from flwr.app import ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.clientapp.typing import Mod

from fedrec.client.cooccurrence import release_chunk
from fedrec.client.dataview import ClientData, client_seed, load_client_data, state_dir
from fedrec.client.sealing import node_key
from fedrec.client.secagg import secagg_mod
from fedrec.client.state import ClientStateStore
from fedrec.shared import protocol as key
from fedrec.shared.cohort_messages import Cohort, cohort_of, reply_content
from fedrec.shared.config import FedRecConfig, resolve_config
from fedrec.shared.device import device_code, node_device
from fedrec.shared.errors import NodeConfigError
from fedrec.shared.logs import show_fedrec_logs
from fedrec.shared.privacy import UserRound, resolve_delta, user_round_for
from fedrec.shared.serialization import arrays_to_numpy, numpy_to_arrays

logger = logging.getLogger(__name__)


def _int(config: ConfigRecord, name: str, default: int | None = None) -> int:
    """An integer from the server's config record, or a clear error."""
    value = config.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"server config {name!r} must be an integer, got {value!r}")
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
    value = config.get(key.RUN_ID)
    if value is not None and (not isinstance(value, str) or not value.isalnum()):
        raise ValueError(f"server config 'run-id' must be an alphanumeric token, got {value!r}")
    return value


def _asker(config: ConfigRecord) -> dict[str, Any]:
    """Which server process asks and where it resumed, as the task's keyword arguments.

    Lets a client that trained a round the server lost roll it back even if not sampled
    for its re-run.
    """
    resumed_from = config.get(key.RESUMED_FROM)
    incarnation = config.get(key.SERVER_INCARNATION)
    return {
        "resumed_from": resumed_from if isinstance(resumed_from, int) else None,
        "incarnation": incarnation if isinstance(incarnation, str) else None,
        "committed": _committed(config.get(key.COMMITTED_INCARNATIONS)),
        "run_id": _run_id(config),
    }


def user_round_of(cfg: FedRecConfig, config: ConfigRecord, num_partitions: int) -> UserRound | None:
    """This round's user-level ledger entry, at the run's delta (sent by the server)."""
    delta = config.get(key.USER_DELTA)
    if isinstance(delta, bool) or not isinstance(delta, int | float) or not 0 < delta < 1:
        delta = resolve_delta(cfg.privacy, num_partitions)
    return user_round_for(cfg.privacy, float(delta))


def _secagg_survivors(cfg: FedRecConfig, config: ConfigRecord) -> int | None:
    """Under ``user-dp = secagg``: SecAgg+'s threshold; refuses a message outside SecAgg+."""
    if cfg.privacy.user_dp != "secagg":
        return None
    survivors = config.get(key.SECAGG_MIN_SURVIVORS)
    if isinstance(survivors, bool) or not isinstance(survivors, int) or survivors < 1:
        raise ValueError(
            "user-dp=secagg, but this train message did not come through SecAgg+ (no "
            f"{key.SECAGG_MIN_SURVIVORS}); refusing to send an update the server could read"
        )
    return survivors


def _node(context: Context) -> tuple[int, int, str | None]:
    """(partition-id, num-partitions, state-dir) of this node.

    A node holding its own data (``data-dir``) owns no partition: it needs neither (they
    only seed its initial factors, and give the fallback δ for servers that send none).
    """
    cfg = context.node_config
    own_data = bool(cfg.get("data-dir"))
    try:
        pid = int(cfg.get("partition-id", 0) if own_data else cfg["partition-id"])
        num = int(cfg.get("num-partitions", 1) if own_data else cfg["num-partitions"])
    except KeyError as missing:
        raise NodeConfigError(
            f"node config lacks {missing}; start the SuperNode with "
            "--node-config 'partition-id=N num-partitions=M' (or data-dir=DIR for a node "
            "holding its own users' data)"
        ) from None
    state = cfg.get("state-dir")
    return pid, num, str(state) if state else None


def client_data(cfg: FedRecConfig, context: Context, config: ConfigRecord) -> ClientData:
    """This node's data: its own store (``data-dir``) or its partition of the data set.

    A node's own catalogue must be the run's (``catalog-sha256`` from the server): the
    global model's rows follow the catalogue's order, so another version would train
    every item's row on some other item's interactions.
    """
    pid, num, _ = _node(context)
    data_dir = context.node_config.get("data-dir")
    data = load_client_data(cfg, pid, num, data_dir=str(data_dir) if data_dir else None)
    wanted = config.get(key.CATALOG_SHA256)
    if data.catalog_version is not None and isinstance(wanted, str):
        if wanted != data.catalog_version:
            raise ValueError(
                f"this node's catalogue is version {data.catalog_version[:12]}, the run's is "
                f"{wanted[:12]}; import the run's catalog.json with `fedrec node catalog "
                f"--data-dir {data_dir} FILE` (recorded interactions are kept)"
            )
    return data


def state_store(cfg: FedRecConfig, context: Context, run_id: str | None) -> ClientStateStore:
    """Where and under which key this client keeps its private state for run ``run_id``.

    A node (``state-dir`` in its node config) seals it with the operator's key
    (:func:`~fedrec.client.sealing.node_key`) in one folder per run, and so needs the run
    identity from the server; a simulation uses the run's own key and folder.
    """
    pid, _, node_state = _node(context)
    if not node_state:
        return ClientStateStore(state_dir(cfg, pid, None, run_id))
    if run_id is None:
        raise ValueError(
            f"this node keeps its state per run, but the server sent no {key.RUN_ID!r}; "
            "a server of this fedrec version always does"
        )
    sealing_key = node_key(context.node_config, os.environ)
    return ClientStateStore(state_dir(cfg, pid, node_state, run_id), sealing_key)


def _release(
    msg: Message,
    cfg: FedRecConfig,
    data: ClientData,
    store: ClientStateStore,
    pid: int,
    config: ConfigRecord,
    survivors: int | None,
    n_clients: int,
) -> Message:
    """A slice of the co-occurrence release (client/cooccurrence.py); nothing else is sent."""
    delta = config.get(key.USER_DELTA)
    chunk = release_chunk(
        cfg,
        data,
        store,
        start=_int(config, key.CHUNK_START),
        end=_int(config, key.CHUNK_END),
        n_clients=n_clients,
        survivors=survivors,
        delta=float(delta)
        if isinstance(delta, int | float) and not isinstance(delta, bool)
        else None,
        seeds=(client_seed(cfg, pid),),
    )
    arrays = {name: chunk for name in arrays_to_numpy(msg.content["arrays"])}
    content = {"arrays": numpy_to_arrays(arrays), "metrics": MetricRecord({key.WEIGHT: 1.0})}
    return Message(content=RecordDict(content), reply_to=msg)


def _simulation_worker(context: Context) -> None:
    """Refuse a cohort on a node that holds its own data or state: only simulations have them.

    A cohort names partitions of the run's data set; a real node trains its own users only.
    """
    if context.node_config.get("data-dir") or context.node_config.get("state-dir"):
        raise ValueError(
            "this node holds its own data or state, but the server sent a cohort (several "
            "simulated users per message); only `fedrec simulate`'s worker nodes train those"
        )


def _train_cohort(msg: Message, cfg: FedRecConfig, cohort: Cohort, context: Context) -> Message:
    """A worker's train message: each member trains as its own client, one reply each."""
    from fedrec.client.cohort import simulated_members, train_cohort

    _simulation_worker(context)
    config = msg.content.config_records["config"]
    asker = _asker(config)
    members = simulated_members(cfg, cohort.partitions, cohort.num_partitions, asker["run_id"])
    device = node_device(context.node_config)
    replies = train_cohort(
        cfg,
        members,
        arrays_to_numpy(msg.content["arrays"]),
        server_round=_int(config, key.SERVER_ROUND),
        device=device,
        user_round=user_round_of(cfg, config, cohort.num_partitions),
        **asker,
    )
    code = device_code(device)
    content = reply_content(
        {
            m.partition_id: (r.arrays, {**r.metrics, key.DEVICE: code})
            for m, r in zip(members, replies, strict=True)
        },
        errors={m.partition_id: r.error for m, r in zip(members, replies, strict=True) if r.error},
    )
    return Message(content=content, reply_to=msg)


def _evaluate_cohort(msg: Message, cfg: FedRecConfig, cohort: Cohort, context: Context) -> Message:
    """A worker's evaluate message: each member's metrics, as a one-user client sends them."""
    from fedrec.client.cohort import evaluate_cohort, simulated_members

    _simulation_worker(context)
    config = msg.content.config_records["config"]
    members = simulated_members(cfg, cohort.partitions, cohort.num_partitions, _run_id(config))
    answers = evaluate_cohort(
        cfg,
        members,
        arrays_to_numpy(msg.content["arrays"]),
        k=_int(config, key.EVAL_K, 10),
        personalize_epochs=_int(config, key.PERSONALIZE_EPOCHS, 0),
    )
    content = reply_content(
        {m.partition_id: (None, a) for m, a in zip(members, answers, strict=True)}
    )
    return Message(content=content, reply_to=msg)


def build_client_app(
    overrides: dict[str, Any] | None = None, *, train_mods: Sequence[Mod] = ()
) -> ClientApp:
    """A ClientApp whose settings are the run config with ``overrides`` on top.

    ``train_mods`` run inside SecAgg+ around the train handler (the simulation's faults).
    """
    app = ClientApp()
    # Opacus warns on every empty Poisson batch; with small per-user data sets those are
    # expected (and still accounted for), so the warning is noise in the federation's logs.
    logging.getLogger("opacus.data_loader").setLevel(logging.ERROR)

    @app.lifespan()
    def lifespan(context: Context) -> Iterator[None]:
        # Before any message is handled: fedrec's warnings reach the SuperNode's output (INFO
        # would repeat every client's routine in a simulation's output), and a node config
        # that can never work fails here, with its reason, before any data is read.
        show_fedrec_logs(logging.WARNING)
        node_device(context.node_config)
        _node(context)
        yield

    def _setup(
        msg: Message, context: Context
    ) -> tuple[FedRecConfig, ClientData, ClientStateStore, int, ConfigRecord]:
        cfg = resolve_config(context.run_config, overrides)
        pid, _, _ = _node(context)
        config = msg.content.config_records["config"]
        store = state_store(cfg, context, _run_id(config))
        return cfg, client_data(cfg, context, config), store, pid, config

    # secagg_mod runs Flower's SecAgg+ stages (and passes every other message through).
    @app.train(mods=[secagg_mod, *train_mods])
    def train(msg: Message, context: Context) -> Message:
        from fedrec.client.task import train_round

        started = time.perf_counter()
        cohort = cohort_of(msg.content.config_records["config"])
        if cohort is not None:
            cfg = resolve_config(context.run_config, overrides)
            return _train_cohort(msg, cfg, cohort, context)
        cfg, data, store, pid, config = _setup(msg, context)
        survivors = _secagg_survivors(cfg, config)  # before any training
        if config.get(key.TASK) == key.TASK_COOCCURRENCE:
            return _release(msg, cfg, data, store, pid, config, survivors, _node(context)[1])
        device = node_device(context.node_config)
        reply = train_round(
            cfg,
            data,
            arrays_to_numpy(msg.content["arrays"]),
            store,
            server_round=_int(config, key.SERVER_ROUND),
            seed=client_seed(cfg, pid),
            device=device,
            user_round=user_round_of(cfg, config, _node(context)[1]),
            survivors=survivors,
            started=started,
            **_asker(config),
        )
        # Where it trained says nothing about anyone's records: sent under DP too.
        metrics = {**reply.metrics, key.DEVICE: device_code(device)}
        content = {"arrays": numpy_to_arrays(reply.arrays), "metrics": MetricRecord(metrics)}
        return Message(content=RecordDict(content), reply_to=msg)

    @app.evaluate()
    def evaluate(msg: Message, context: Context) -> Message:
        from fedrec.client.evaluation import evaluate_round

        cohort = cohort_of(msg.content.config_records["config"])
        if cohort is not None:
            cfg = resolve_config(context.run_config, overrides)
            return _evaluate_cohort(msg, cfg, cohort, context)
        cfg, data, store, pid, config = _setup(msg, context)
        metrics = evaluate_round(
            cfg,
            data,
            arrays_to_numpy(msg.content["arrays"]),
            store,
            k=_int(config, key.EVAL_K, 10),
            personalize_epochs=_int(config, key.PERSONALIZE_EPOCHS, 0),
            seed=client_seed(cfg, pid),
        )
        return Message(content=RecordDict({"metrics": MetricRecord(metrics)}), reply_to=msg)

    return app


app = build_client_app()
