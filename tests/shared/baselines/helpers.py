"""Tiny splits with known answers for the baseline tests."""

from __future__ import annotations

import numpy as np

from fedrec.shared.data.dataset import Interactions, Split


def make_split(
    train: list[tuple[int, int]], valid: list[int], test: list[int], n_items: int
) -> Split:
    """A split from (user, item) training pairs and one valid/test item per user (-1: none)."""
    users = np.array([u for u, _ in train], dtype=np.int64)
    items = np.array([i for _, i in train], dtype=np.int64)
    return Split(
        train=Interactions(
            users=users,
            items=items,
            ratings=np.ones(len(train), dtype=np.float32),
            timestamps=np.zeros(len(train), dtype=np.int64),
        ),
        valid_items=np.array(valid, dtype=np.int64),
        test_items=np.array(test, dtype=np.int64),
        n_users=len(valid),
        n_items=n_items,
    )


def checkerboard(n: int = 20) -> Split:
    """implicit's checkerboard: user u likes every item of u's parity, n users and n items.

    User u's own item u is held out for test and item (u + 2) % n for validation, so the
    one unseen item every similar user liked is the right answer for both.
    """
    train = [(u, i) for u in range(n) for i in range(u % 2, n, 2) if i not in (u, (u + 2) % n)]
    return make_split(train, [(u + 2) % n for u in range(n)], list(range(n)), n)
