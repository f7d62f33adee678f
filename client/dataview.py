"""A client's view of the data: its own users and their interactions, and where it keeps state.

A client owns one user (cross-device) or a block of users (cross-silo). It sees the public
catalogue (item texts, for the text towers) and its users' interactions only. Two sources,
one interface (:func:`load_client_data`): an edge node's own store (``data-dir`` in its node
config, :mod:`fedrec.client.localstore`), or, in simulations, a partition of the run's data
set, whose split (leave-last-out) is the same on every client because it is computed from
the same seeded data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from fedrec.client.localstore import NodeStore
from fedrec.shared.config import DataConfig, FedRecConfig
from fedrec.shared.data import catalog_version, load_split, partition_users
from fedrec.shared.errors import ConfigError


@dataclass(frozen=True)
class ClientData:
    """One client's slice of the data: its users and their interactions only."""

    users: np.ndarray  # global user indices owned by this client
    train_users: np.ndarray  # local user index (0..len(users)-1) per training row
    train_items: np.ndarray  # item index per training row
    exclude: list[np.ndarray]  # per local user: items never to rank (train + valid)
    seen: list[np.ndarray]  # per local user: every item they touched (for negatives)
    test_items: np.ndarray  # per local user, -1 when none
    n_items: int
    item_texts: Sequence[str] = ()  # the public catalogue's texts (for the text towers)
    user_ids: Sequence[str] = ()  # a node's own users' ids, by local index (node store only)
    catalog_version: str | None = None  # the node's catalogue version (node store only)


def load_client_data(
    cfg: FedRecConfig, partition_id: int, num_partitions: int, *, data_dir: str | None = None
) -> ClientData:
    """This client's users and data: its own (``data_dir``) or a partition's.

    ``data_dir`` (a node's ``data-dir``): the users in the node's own store
    (:func:`node_client_data`). Otherwise partition ``partition_id`` of the run's data set
    (the split is loaded once per process).
    """
    if data_dir:
        return node_client_data(cfg, NodeStore(Path(data_dir)))
    if cfg.data.data_source == "node":
        raise ConfigError(
            "data-source=node: every client holds its own data, but this one has no data-dir; "
            "start the SuperNode with --node-config \"data-dir='/path/to/data'\""
        )
    dataset, split = load_split(cfg.data)
    users = partition_users(split.n_users, num_partitions=num_partitions, seed=cfg.data.seed)[
        partition_id
    ]
    order, starts = _rows_by_user(cfg.data)
    rows = np.sort(np.concatenate([order[starts[u] : starts[u + 1]] for u in users]))
    local_of = np.full(split.n_users, -1, dtype=np.int64)
    local_of[users] = np.arange(len(users))
    train_users = local_of[split.train.users[rows]]
    train_items = split.train.items[rows].astype(np.int64)
    exclude, seen = [], []
    for k, u in enumerate(users):
        own = np.unique(train_items[train_users == k])
        valid, test = int(split.valid_items[u]), int(split.test_items[u])
        extra = [i for i in (valid,) if i >= 0]
        exclude.append(np.union1d(own, np.array(extra, dtype=np.int64)))
        seen.append(
            np.union1d(exclude[-1], np.array([t for t in (test,) if t >= 0], dtype=np.int64))
        )
    return ClientData(
        users=users,
        train_users=train_users,
        train_items=train_items,
        exclude=exclude,
        seen=seen,
        test_items=split.test_items[users].astype(np.int64),
        n_items=split.n_items,
        item_texts=dataset.items.texts,
    )


@lru_cache(maxsize=4)
def _rows_by_user(data: DataConfig) -> tuple[np.ndarray, np.ndarray]:
    """The split's training rows grouped by user: ``order[starts[u]:starts[u + 1]]``.

    Computed once per process: every simulated client would otherwise scan all rows.
    """
    _, split = load_split(data)
    order = np.argsort(split.train.users, kind="stable")
    counts = np.bincount(split.train.users, minlength=split.n_users)
    return order, np.concatenate([[0], np.cumsum(counts)])


def node_client_data(cfg: FedRecConfig, store: NodeStore) -> ClientData:
    """The node's users and their interactions, from its own store.

    Every row not held out for evaluation trains, the newest feedback included (the
    hold-out rule: :mod:`fedrec.client.localstore`).
    """
    rows = store.rows(implicit_threshold=cfg.data.implicit_threshold)
    catalog = store.catalog()
    train_users, train_items, exclude, seen, test_items = [], [], [], [], []
    for k, items in enumerate(rows.items):
        held = items[rows.holdout[k]]  # newest first
        target = int(held[0]) if held.size else -1
        train = items[rows.positive[k] & ~rows.holdout[k]]
        train_users.append(np.full(train.size, k, dtype=np.int64))
        train_items.append(train)
        seen.append(np.unique(items))
        exclude.append(seen[-1][seen[-1] != target])  # never rank what they already have
        test_items.append(target)
    return ClientData(
        users=np.arange(len(rows.user_ids), dtype=np.int64),
        train_users=np.concatenate(train_users) if train_users else np.zeros(0, np.int64),
        train_items=np.concatenate(train_items) if train_items else np.zeros(0, np.int64),
        exclude=exclude,
        seen=seen,
        test_items=np.array(test_items, dtype=np.int64),
        n_items=len(catalog),
        item_texts=catalog.texts,
        user_ids=tuple(rows.user_ids),
        catalog_version=catalog_version(catalog),
    )


def client_seed(cfg: FedRecConfig, partition_id: int) -> int:
    """A per-client seed derived from the run seed (distinct for every partition)."""
    return cfg.data.seed * 100_003 + partition_id


def state_dir(
    cfg: FedRecConfig, partition_id: int, node_state_dir: str | None, run_id: str | None = None
) -> Path:
    """Where this client keeps its private state: per run, never shared between runs.

    On a node (``state-dir`` in its node config) one folder per run identity, so a second
    run on the same node starts its own ledger instead of continuing the first run's.
    """
    if node_state_dir:
        return Path(node_state_dir) / f"run-{run_id}" if run_id else Path(node_state_dir)
    return (
        Path(cfg.output.output_dir) / cfg.output.run_name / "clients" / f"partition-{partition_id}"
    )
