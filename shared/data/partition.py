"""Assign users to federated clients.

A seeded shuffle of all users is cut into ``num_partitions`` contiguous chunks whose sizes
differ by at most one. ``num_partitions == n_users`` gives one user per client (the
cross-device setting); fewer partitions give blocks of users per node (cross-silo).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from fedrec.shared.errors import ConfigError


def partition_users(n_users: int, *, num_partitions: int, seed: int) -> list[np.ndarray]:
    """Return the users (sorted int64 indices) of each of ``num_partitions`` clients.

    Deterministic for a seed; the partitions are disjoint and together cover
    ``0..n_users-1``. Raises :class:`ConfigError` unless ``1 <= num_partitions <= n_users``.
    The arrays are read-only: they are computed once per process and shared.
    """
    return list(_partitions(int(n_users), int(num_partitions), int(seed)))


@lru_cache(maxsize=16)
def _partitions(n_users: int, num_partitions: int, seed: int) -> tuple[np.ndarray, ...]:
    # Every simulated client of a process asks for the same cut.
    if num_partitions < 1 or num_partitions > n_users:
        raise ConfigError(
            f"num-partitions must be between 1 and the number of users ({n_users}), got "
            f"{num_partitions}; use one partition per user (cross-device) or fewer "
            "(cross-silo)"
        )
    shuffled = np.random.default_rng(seed).permutation(n_users).astype(np.int64)
    chunks = tuple(np.sort(chunk) for chunk in np.array_split(shuffled, num_partitions))
    for chunk in chunks:
        chunk.flags.writeable = False
    return chunks
