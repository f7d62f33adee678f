"""The client's side of the private co-occurrence release: its term plus its noise share.

What leaves the client is :func:`cooccurrence_share`'s vector and nothing else: its
training items' co-occurrence (L2 norm 1, :mod:`fedrec.shared.models.cooccurrence`) plus
the noise the release plan gives each client (:mod:`fedrec.shared.privacy.cooccurrence`),
drawn from the privacy package's CSPRNG unless ``reproducible-noise`` asked otherwise.
Validation and test items never enter it.
"""

from __future__ import annotations

import numpy as np

from fedrec.shared.models.cooccurrence import contribution
from fedrec.shared.privacy import DPRandom


def cooccurrence_share(
    items: np.ndarray, n_items: int, std: float, rng: DPRandom | None
) -> np.ndarray:
    """The vector one client sends: its co-occurrence term plus ``N(0, std²)`` per entry."""
    vector = contribution(items, n_items)
    if std > 0:
        if rng is None:
            raise ValueError("a noised share needs a DP random source")
        vector += rng.normal(vector.shape, std)
    return vector
