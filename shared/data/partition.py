"""Assign users to federated clients.

A seeded shuffle of all users is cut into ``num_partitions`` contiguous chunks whose sizes
differ by at most one. ``num_partitions == n_users`` gives one user per client (the
cross-device setting); fewer partitions give blocks of users per node (cross-silo).
"""

from __future__ import annotations

import numpy as np

from fedrec.shared.errors import ConfigError


def partition_users(n_users: int, *, num_partitions: int, seed: int) -> list[np.ndarray]:
    """Return the users (sorted int64 indices) of each of ``num_partitions`` clients.

    Deterministic for a seed; the partitions are disjoint and together cover
    ``0..n_users-1``. Raises :class:`ConfigError` unless ``1 <= num_partitions <= n_users``.
    """
    if num_partitions < 1 or num_partitions > n_users:
        raise ConfigError(
            f"num-partitions must be between 1 and the number of users ({n_users}), got "
            f"{num_partitions}; use one partition per user (cross-device) or fewer "
            "(cross-silo)"
        )
    shuffled = np.random.default_rng(seed).permutation(n_users).astype(np.int64)
    return [np.sort(chunk) for chunk in np.array_split(shuffled, num_partitions)]
