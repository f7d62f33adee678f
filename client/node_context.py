"""This node as its Flower Context describes it: its partition, its data, its state store.

A simulated node owns a partition of the run's data set and keeps its state under the
run's folder; a deployed node names its own data (``data-dir``) and state (``state-dir``)
in its node config. Both are resolved here, once per message, from the node config and
the server's config record.
"""

from __future__ import annotations

import os

from flwr.app import ConfigRecord, Context

from fedrec.client.dataview import ClientData, load_client_data, state_dir
from fedrec.client.sealing import node_key
from fedrec.client.state import ClientStateStore
from fedrec.shared import protocol as key
from fedrec.shared.config import FedRecConfig
from fedrec.shared.errors import NodeConfigError


def node_of(context: Context) -> tuple[int, int, str | None]:
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
    pid, num, _ = node_of(context)
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
    pid, _, node_state = node_of(context)
    if not node_state:
        return ClientStateStore(state_dir(cfg, pid, None, run_id))
    if run_id is None:
        raise ValueError(
            f"this node keeps its state per run, but the server sent no {key.RUN_ID!r}; "
            "a server of this fedrec version always does"
        )
    sealing_key = node_key(context.node_config, os.environ)
    return ClientStateStore(state_dir(cfg, pid, node_state, run_id), sealing_key)


def refuse_cohort_on_own_node(context: Context) -> None:
    """Refuse a cohort on a node that holds its own data or state: only simulations have them.

    A cohort names partitions of the run's data set; a real node trains its own users only.
    """
    if context.node_config.get("data-dir") or context.node_config.get("state-dir"):
        raise ValueError(
            "this node holds its own data or state, but the server sent a cohort (several "
            "simulated users per message); only `fedrec simulate`'s worker nodes train those"
        )
