"""Leave-last-out splitting: each user's latest interaction is the test item.

The standard protocol for next-item evaluation (NCF, He et al. 2017): per user, sort by
time; the last interaction is held out for test, the one before it for validation, the
rest is training data. Vectorised with one ``np.lexsort``; 1M rows take well under a
second.
"""

from __future__ import annotations

import numpy as np

from fedrec.shared.data.dataset import Interactions, Split


def implicit_view(interactions: Interactions, threshold: float) -> Interactions:
    """Rows with ``rating >= threshold`` (all rows when ``threshold <= 0``)."""
    if threshold <= 0:
        return interactions
    return interactions.subset(interactions.ratings >= threshold)


def leave_last_out(
    interactions: Interactions,
    *,
    n_users: int,
    n_items: int,
    implicit_threshold: float = 0.0,
    seed: int = 42,
) -> Split:
    """Split into train / one validation item / one test item per user.

    First the implicit view keeps rows with ``rating >= implicit_threshold`` (0 keeps
    all). Each user's rows are ordered by timestamp, ties broken by a permutation drawn
    from ``seed`` (so equal seeds give equal splits). A user with 3+ rows gets a test
    item (the last) and a validation item (the one before); with 2 rows only a test
    item; with 1 row (or none) neither (``-1``). Every other row is training data, in
    its original order.
    """
    view = implicit_view(interactions, implicit_threshold)
    users, items = view.users, view.items
    if len(view) and (users.min() < 0 or users.max() >= n_users):
        raise ValueError(
            f"user indices must be in [0, {n_users}), got {users.min()}..{users.max()}"
        )
    if len(view) and (items.min() < 0 or items.max() >= n_items):
        raise ValueError(
            f"item indices must be in [0, {n_items}), got {items.min()}..{items.max()}"
        )
    tiebreak = np.random.default_rng(seed).permutation(len(view))
    order = np.lexsort((tiebreak, view.timestamps, users))  # last key is the primary one
    counts = np.bincount(users, minlength=n_users)
    ends = np.cumsum(counts)  # one past each user's last row in `order`

    test_items = np.full(n_users, -1, dtype=np.int64)
    valid_items = np.full(n_users, -1, dtype=np.int64)
    held_out = np.zeros(len(view), dtype=bool)
    has_test = np.flatnonzero(counts >= 2)
    test_rows = order[ends[has_test] - 1]
    test_items[has_test] = items[test_rows]
    held_out[test_rows] = True
    has_valid = np.flatnonzero(counts >= 3)
    valid_rows = order[ends[has_valid] - 2]
    valid_items[has_valid] = items[valid_rows]
    held_out[valid_rows] = True

    return Split(
        train=view.subset(~held_out),
        valid_items=valid_items,
        test_items=test_items,
        n_users=n_users,
        n_items=n_items,
    )
