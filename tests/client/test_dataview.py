"""A simulated client's view: exactly its partition's rows, in the split's order."""

from __future__ import annotations

import numpy as np
import pytest

from fedrec.client.dataview import load_client_data
from fedrec.shared.config import resolve_config
from fedrec.shared.data import load_split, partition_users


@pytest.mark.parametrize("num_partitions", [943, 40, 1])
def test_partition_rows_are_the_users_rows_in_split_order(num_partitions: int) -> None:
    cfg = resolve_config({}, {})
    _, split = load_split(cfg.data)
    parts = partition_users(split.n_users, num_partitions=num_partitions, seed=cfg.data.seed)
    for pid in {0, num_partitions // 2, num_partitions - 1}:
        data = load_client_data(cfg, pid, num_partitions)
        users = parts[pid]
        mask = np.isin(split.train.users, users)  # the reference: a scan of every row
        np.testing.assert_array_equal(users[data.train_users], split.train.users[mask])
        np.testing.assert_array_equal(data.train_items, split.train.items[mask])
        assert data.train_users.dtype == np.int64 and data.train_items.dtype == np.int64
