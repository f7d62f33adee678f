"""User-level DP primitives: clip a client's whole update, add Gaussian noise.

The unit here is one client's entire contribution in a round (all of its records). The
update is the dict of shared-tensor deltas a client sends; its L2 norm is taken over all
tensors together, so the clip bound is the sensitivity of the sum of clipped updates.
Noise is dense: every coordinate of every tensor gets noise, so the noised update does not
reveal which rows (items) the client touched. The noise comes from a
:class:`~fedrec.shared.privacy.random.DPRandom` (a CSPRNG unless reproducible noise was
asked for), in float64, rounded once when it is added.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from fedrec.shared.privacy.random import DPRandom

PLACEMENTS = ("central", "local", "secagg")


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
    delta: Mapping[str, np.ndarray], std: float, rng: DPRandom
) -> dict[str, np.ndarray]:
    """Independent N(0, std^2) float64 noise of the same shapes as ``delta`` (every coordinate)."""
    return {k: rng.normal(np.shape(v), std) for k, v in delta.items()}


def survivor_floor(n_sampled: int, fraction: float) -> int:
    """``secagg-min-survivors``' count: the fewest of ``n_sampled`` a sum may be unmasked for.

    0 when the floor is off. Rounded up (with a little slack for ``0.7 * 10`` being
    ``7.000000000000001`` in floating point).
    """
    if not 0 <= fraction <= 1:
        raise ValueError(f"the survivor floor must be a fraction in [0, 1], got {fraction}")
    return max(0, math.ceil(fraction * n_sampled - 1e-9))


def share_survivors(threshold: int, n_sampled: int, fraction: float) -> int:
    """How many survivors each SecAgg+ noise share is sized for.

    SecAgg+'s reconstruction ``threshold`` (no sum of fewer can be unmasked), or the
    server's survivor floor (``secagg-min-survivors`` of the ``n_sampled`` clients) where
    that is higher: the server then refuses to unmask a sum of fewer.
    """
    return max(int(threshold), survivor_floor(n_sampled, fraction))


def noise_std(
    placement: str,
    noise_multiplier: float,
    clip: float,
    *,
    survivors: int | None = None,
    colluders: int = 0,
) -> float:
    """The std of the noise *one* party adds so that the sum carries at least N(0, (σC)²).

    ``central``: the server adds it once to the sum; ``local``: each client adds all of it
    to its own update; ``secagg``: each of at least ``survivors`` clients whose updates
    reach the secure sum adds ``σC / sqrt(survivors - colluders)``. The variances of the
    honest shares then add up to at least (σC)² however many of the others dropped out,
    even if ``colluders`` of the survivors tell the server their own shares.
    """
    if placement not in PLACEMENTS:
        raise ValueError(f"placement must be one of {PLACEMENTS}, got {placement!r}")
    full = noise_multiplier * clip
    if placement != "secagg":
        return full
    if survivors is None or survivors < 1:
        raise ValueError(f"secagg noise needs the minimum number of survivors, got {survivors}")
    if colluders < 0 or survivors - colluders < 1:
        raise ValueError(
            f"secagg noise for {colluders} colluder(s) needs more than that many survivors, "
            f"got {survivors}; lower secagg-max-colluders or raise the reconstruction threshold"
        )
    return full / float(np.sqrt(survivors - colluders))


def privatize(
    delta: Mapping[str, np.ndarray], clip: float, std: float, rng: DPRandom
) -> tuple[dict[str, np.ndarray], float]:
    """``delta`` clipped to joint L2 norm ``clip`` plus dense N(0, std²) noise; and the scale."""
    clipped, scale = clip_update(delta, clip)
    noise = gaussian_noise_like(clipped, std, rng)
    return {k: (clipped[k] + noise[k]).astype(np.float32) for k in clipped}, scale
