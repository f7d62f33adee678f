"""User-level DP primitives: clip a client's whole update, add Gaussian noise.

The unit here is one client's entire contribution in a round (all of its records). The
update is the dict of shared-tensor deltas a client sends; its L2 norm is taken over all
tensors together, so the clip bound is the sensitivity of the sum of clipped updates.
Noise is dense: every coordinate of every tensor gets noise, so the noised update does not
reveal which rows (items) the client touched.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def update_norm(delta: Mapping[str, np.ndarray]) -> float:
    """The L2 norm of all tensors of ``delta`` taken together."""
    return float(
        np.sqrt(sum(float(np.sum(np.square(v, dtype=np.float64))) for v in delta.values()))
    )


def clip_update(
    delta: Mapping[str, np.ndarray], clip: float
) -> tuple[dict[str, np.ndarray], float]:
    """``delta`` scaled so its joint L2 norm is at most ``clip``; returns it and the scale."""
    if clip <= 0:
        raise ValueError(f"clip bound must be > 0, got {clip}")
    norm = update_norm(delta)
    scale = min(1.0, clip / norm) if norm > 0 else 1.0
    return {k: (np.asarray(v) * scale).astype(np.float32) for k, v in delta.items()}, scale


def gaussian_noise_like(
    delta: Mapping[str, np.ndarray], std: float, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Independent N(0, std^2) noise of the same shapes as ``delta`` (every coordinate)."""
    if std < 0:
        raise ValueError(f"noise std must be >= 0, got {std}")
    return {
        k: (rng.standard_normal(np.shape(v)) * std).astype(np.float32) for k, v in delta.items()
    }
