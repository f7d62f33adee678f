"""A client's slice of the co-occurrence release: the entries of its users' terms, alone."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedrec.client.cooccurrence import users_terms
from fedrec.client.dataview import ClientData, load_client_data
from fedrec.shared.config import resolve_config
from fedrec.shared.data import load_split
from fedrec.shared.models.cooccurrence import (
    contribution,
    contribution_entries,
    rows_of,
    vector_size,
)


@pytest.mark.parametrize("num_partitions", [943, 20])
def test_the_slices_of_a_clients_terms_add_up_to_its_users_whole_terms(
    num_partitions: int,
) -> None:
    cfg = resolve_config({}, {})
    _, split = load_split(cfg.data)
    data = load_client_data(cfg, num_partitions // 2, num_partitions)
    n, size = data.n_items, vector_size(split.n_items)
    whole = sum(
        contribution(data.train_items[data.train_users == k], n) for k in range(len(data.users))
    )
    edges = [0, 1, 70_000, 200_000, 1_000_001, size]  # ragged slices, one of a single entry
    pieces = [users_terms(data, a, b) for a, b in zip(edges, edges[1:], strict=False)]
    assert [p.shape for p in pieces] == [(b - a,) for a, b in zip(edges, edges[1:], strict=False)]
    np.testing.assert_allclose(np.concatenate(pieces), whole, rtol=0, atol=1e-12)


def test_a_users_entries_are_its_terms_nonzero_entries_in_order() -> None:
    items = np.array([7, 2, 2, 30, 11])
    positions, values = contribution_entries(items, 31)
    dense = contribution(items, 31)
    assert np.all(np.diff(positions) > 0)
    np.testing.assert_array_equal(positions, np.flatnonzero(dense))
    np.testing.assert_array_equal(values, dense[positions])
    empty = contribution_entries(np.array([], np.int64), 31)
    assert empty[0].size == 0 and empty[1].size == 0


def test_a_slice_costs_the_clients_pairs_not_the_whole_catalogues() -> None:
    # 5,000 items: the whole release is 12.5M entries (100 MB as float64) per user. A slice
    # of 1,000 entries must be built from the users' pairs alone, never from that vector.
    rng = np.random.default_rng(0)
    n_items, users = 5_000, 3
    items = [rng.choice(n_items, 40, replace=False) for _ in range(users)]
    data = ClientData(
        users=np.arange(users),
        train_users=np.repeat(np.arange(users), 40),
        train_items=np.concatenate(items),
        exclude=[],
        seen=[],
        test_items=np.full(users, -1),
        n_items=n_items,
    )
    start = 400_000
    tracemalloc.start()
    part = users_terms(data, start, start + 1_000)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1_000_000  # bytes; the whole vector would be 100 MB
    expected = sum(contribution(i, n_items)[start : start + 1_000] for i in items)
    np.testing.assert_allclose(part, expected, rtol=0, atol=1e-12)


@given(
    items=st.lists(st.integers(0, 30), max_size=25),
    start=st.integers(0, vector_size(31) - 1),
    length=st.integers(1, 200),
)
@settings(max_examples=80, deadline=None)
def test_the_rows_of_a_slice_hold_every_pair_in_it(
    items: list[int], start: int, length: int
) -> None:
    end = min(start + length, vector_size(31))
    first, last = rows_of(start, end, 31)
    row = np.array([i * 31 - i * (i - 1) // 2 for i in range(31)])  # where each row starts
    assert row[first] <= start and (first == 30 or row[first + 1] > start)
    assert row[last] <= end - 1 and (last == 30 or row[last + 1] > end - 1)
    every, values = contribution_entries(np.array(items, np.int64), 31)
    some, some_values = contribution_entries(np.array(items, np.int64), 31, (first, last))
    inside = (every >= start) & (every < end)
    assert set(every[inside]) <= set(some) <= set(every)
    np.testing.assert_array_equal(some_values, values[np.isin(every, some)])
