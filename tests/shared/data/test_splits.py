from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedrec.shared.data.dataset import Interactions
from fedrec.shared.data.splits import implicit_view, leave_last_out

N_USERS, N_ITEMS = 6, 8


def make(rows: list[tuple[int, int, float, int]]) -> Interactions:
    return Interactions(
        users=np.array([r[0] for r in rows], dtype=np.int64),
        items=np.array([r[1] for r in rows], dtype=np.int64),
        ratings=np.array([r[2] for r in rows], dtype=np.float32),
        timestamps=np.array([r[3] for r in rows], dtype=np.int64),
    )


ROWS = st.lists(
    st.tuples(
        st.integers(0, N_USERS - 1),
        st.integers(0, N_ITEMS - 1),
        st.sampled_from([1.0, 2.0, 3.0, 4.0, 5.0]),
        st.integers(0, 5),  # few distinct timestamps: many ties
    ),
    max_size=60,
)


def test_known_answer() -> None:
    inter = make(
        [
            (0, 1, 5, 30),  # user 0: train 3, valid 2, test 1 (latest)
            (0, 2, 5, 20),
            (0, 3, 5, 10),
            (1, 4, 5, 7),  # user 1: two rows -> train + test
            (1, 5, 5, 3),
            (2, 6, 5, 1),  # user 2: one row -> train only
        ]
    )

    split = leave_last_out(inter, n_users=4, n_items=N_ITEMS)

    assert split.test_items.tolist() == [1, 4, -1, -1]
    assert split.valid_items.tolist() == [2, -1, -1, -1]
    assert split.train.items.tolist() == [3, 5, 6]  # original row order
    assert (split.n_users, split.n_items) == (4, N_ITEMS)


@settings(max_examples=200, deadline=None)
@given(rows=ROWS, threshold=st.sampled_from([0.0, 3.0, 4.5]), seed=st.integers(0, 2**31))
def test_properties(rows, threshold: float, seed: int) -> None:
    inter = make(rows)

    split = leave_last_out(
        inter, n_users=N_USERS, n_items=N_ITEMS, implicit_threshold=threshold, seed=seed
    )

    kept = [r for r in rows if r[2] >= threshold]
    # every kept row lands in exactly one of train / valid / test
    held = Counter()
    for u in range(N_USERS):
        for arr in (split.valid_items, split.test_items):
            if arr[u] >= 0:
                held[(u, int(arr[u]))] += 1
    train = Counter(zip(split.train.users.tolist(), split.train.items.tolist(), strict=True))
    assert train + held == Counter((u, i) for u, i, _, _ in kept)
    assert len(split.train) + sum(held.values()) == len(kept)
    assert np.all(split.train.ratings >= threshold)
    for u in range(N_USERS):
        mine = [r for r in kept if r[0] == u]
        n = len(mine)
        assert (split.test_items[u] >= 0) == (n >= 2)
        assert (split.valid_items[u] >= 0) == (n >= 3)
        if n >= 2:
            latest = max(t for _, _, _, t in mine)
            test_times = [t for _, i, _, t in mine if i == split.test_items[u]]
            assert latest in test_times  # the test item has the user's max timestamp
            train_times = split.train.timestamps[split.train.users == u]
            assert np.all(train_times <= latest)
        if n >= 3:
            valid_times = [t for _, i, _, t in mine if i == split.valid_items[u]]
            assert np.all(train_times <= max(valid_times))


@settings(max_examples=50, deadline=None)
@given(rows=ROWS, seed=st.integers(0, 2**31))
def test_deterministic_for_a_seed(rows, seed: int) -> None:
    inter = make(rows)

    a = leave_last_out(inter, n_users=N_USERS, n_items=N_ITEMS, seed=seed)
    b = leave_last_out(inter, n_users=N_USERS, n_items=N_ITEMS, seed=seed)

    assert np.array_equal(a.test_items, b.test_items)
    assert np.array_equal(a.valid_items, b.valid_items)
    assert np.array_equal(a.train.items, b.train.items)


def test_ties_broken_by_seed_not_by_row_order() -> None:
    inter = make([(0, i, 5.0, 0) for i in range(8)])

    tests = {
        int(leave_last_out(inter, n_users=1, n_items=8, seed=s).test_items[0]) for s in range(40)
    }

    assert len(tests) > 1


def test_implicit_view_threshold_zero_keeps_everything() -> None:
    inter = make([(0, 0, 0.5, 0), (0, 1, 4.0, 1)])

    assert implicit_view(inter, 0.0) is inter
    assert implicit_view(inter, 4.0).items.tolist() == [1]


def test_out_of_range_indices_rejected() -> None:
    with pytest.raises(ValueError, match="user indices"):
        leave_last_out(make([(3, 0, 1.0, 0)]), n_users=2, n_items=1)


def test_one_million_rows_is_fast() -> None:
    import time

    rng = np.random.default_rng(0)
    n = 1_000_000
    inter = Interactions(
        users=rng.integers(0, 6000, n),
        items=rng.integers(0, 4000, n),
        ratings=np.ones(n, np.float32),
        timestamps=rng.integers(0, 10**6, n),
    )

    start = time.perf_counter()
    split = leave_last_out(inter, n_users=6000, n_items=4000)

    assert time.perf_counter() - start < 5.0
    assert (
        len(split.train) + int((split.test_items >= 0).sum() + (split.valid_items >= 0).sum()) == n
    )
