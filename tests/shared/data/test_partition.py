from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fedrec.shared.data.partition import partition_users
from fedrec.shared.errors import ConfigError


@st.composite
def sizes(draw):
    n_users = draw(st.integers(1, 300))
    return n_users, draw(st.integers(1, n_users))


@given(sizes(), st.integers(0, 2**31))
def test_disjoint_cover_balanced_and_deterministic(shape, seed: int) -> None:
    n_users, k = shape

    parts = partition_users(n_users, num_partitions=k, seed=seed)

    assert len(parts) == k
    everyone = np.concatenate(parts)
    assert sorted(everyone.tolist()) == list(range(n_users))  # disjoint and covering
    lengths = [len(p) for p in parts]
    assert max(lengths) - min(lengths) <= 1
    assert all(p.dtype == np.int64 for p in parts)
    again = partition_users(n_users, num_partitions=k, seed=seed)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again, strict=True))


def test_cross_device_is_one_user_per_client() -> None:
    parts = partition_users(943, num_partitions=943, seed=1)

    assert all(len(p) == 1 for p in parts)


def test_seed_changes_the_assignment() -> None:
    a = partition_users(100, num_partitions=10, seed=1)
    b = partition_users(100, num_partitions=10, seed=2)

    assert any(not np.array_equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("k", [0, -1, 11])
def test_bad_partition_counts(k: int) -> None:
    with pytest.raises(ConfigError, match="num-partitions"):
        partition_users(10, num_partitions=k, seed=0)
