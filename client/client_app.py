"""Flower ClientApp: parse the message, call :mod:`fedrec.client.task`, reply.

The reply carries only the global tensors after local DP-SGD (noised again under
``user-dp`` local or secagg) and a few scalars; what may leave the client, the budget
refusal and the evaluation refusal under DP are the task's decisions
(:func:`~fedrec.client.task.train_round`, :func:`~fedrec.client.evaluation.evaluate_round`).
Private user factors and the privacy ledger stay in the client's state.

A simulation worker's message names several simulated users (a cohort,
:mod:`fedrec.shared.cohort_messages`): :mod:`fedrec.client.cohort_reply` trains or
evaluates each of them as its own client and replies with one record pair per user.
A co-occurrence release message is answered by :func:`~fedrec.client.cooccurrence.release_reply`.

The training and evaluation code (torch, and Opacus where a client trains alone) is
imported by the handlers that run it: ``fedrec simulate``'s server process builds this app
to hand it to the simulation engine and never trains.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from typing import Any

from flwr.app import ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.clientapp.typing import Mod

from fedrec.client.cohort_reply import evaluate_cohort_reply, train_cohort_reply
from fedrec.client.cooccurrence import release_reply
from fedrec.client.dataview import ClientData, client_seed
from fedrec.client.message_config import (
    asker_of,
    config_int,
    run_id_of,
    secagg_survivors,
    user_round_of,
)
from fedrec.client.node_context import client_data, node_of, state_store
from fedrec.client.secagg import secagg_mod
from fedrec.client.state import ClientStateStore
from fedrec.shared import protocol as key
from fedrec.shared.cohort_messages import cohort_of
from fedrec.shared.config import FedRecConfig, resolve_config
from fedrec.shared.device import device_code, node_device
from fedrec.shared.logs import show_fedrec_logs
from fedrec.shared.serialization import arrays_to_numpy, numpy_to_arrays


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
        node_of(context)
        yield

    def _setup(
        msg: Message, context: Context
    ) -> tuple[FedRecConfig, ClientData, ClientStateStore, int, ConfigRecord]:
        cfg = resolve_config(context.run_config, overrides)
        pid, _, _ = node_of(context)
        config = msg.content.config_records["config"]
        store = state_store(cfg, context, run_id_of(config))
        return cfg, client_data(cfg, context, config), store, pid, config

    # secagg_mod runs Flower's SecAgg+ stages (and passes every other message through).
    @app.train(mods=[secagg_mod, *train_mods])
    def train(msg: Message, context: Context) -> Message:
        from fedrec.client.task import train_round

        started = time.perf_counter()
        cohort = cohort_of(msg.content.config_records["config"])
        if cohort is not None:
            cfg = resolve_config(context.run_config, overrides)
            return train_cohort_reply(msg, cfg, cohort, context)
        cfg, data, store, pid, config = _setup(msg, context)
        survivors = secagg_survivors(cfg, config)  # before any training
        n_clients = node_of(context)[1]
        if config.get(key.TASK) == key.TASK_COOCCURRENCE:
            return release_reply(
                msg,
                cfg,
                data,
                store,
                config=config,
                partition_id=pid,
                n_clients=n_clients,
                survivors=survivors,
            )
        device = node_device(context.node_config)
        reply = train_round(
            cfg,
            data,
            arrays_to_numpy(msg.content.array_records["arrays"]),
            store,
            server_round=config_int(config, key.SERVER_ROUND),
            seed=client_seed(cfg, pid),
            device=device,
            user_round=user_round_of(cfg, config, n_clients),
            survivors=survivors,
            started=started,
            **asker_of(config),
        )
        # Where it trained says nothing about anyone's records: sent under DP too.
        metrics = {**reply.metrics, key.DEVICE: device_code(device)}
        content = RecordDict(
            {"arrays": numpy_to_arrays(reply.arrays), "metrics": MetricRecord(dict(metrics))}
        )
        return Message(content=content, reply_to=msg)

    @app.evaluate()
    def evaluate(msg: Message, context: Context) -> Message:
        from fedrec.client.evaluation import evaluate_round

        cohort = cohort_of(msg.content.config_records["config"])
        if cohort is not None:
            cfg = resolve_config(context.run_config, overrides)
            return evaluate_cohort_reply(msg, cfg, cohort, context)
        cfg, data, store, pid, config = _setup(msg, context)
        metrics = evaluate_round(
            cfg,
            data,
            arrays_to_numpy(msg.content.array_records["arrays"]),
            store,
            k=config_int(config, key.EVAL_K, 10),
            personalize_epochs=config_int(config, key.PERSONALIZE_EPOCHS, 0),
            seed=client_seed(cfg, pid),
        )
        return Message(content=RecordDict({"metrics": MetricRecord(dict(metrics))}), reply_to=msg)

    return app


app = build_client_app()
