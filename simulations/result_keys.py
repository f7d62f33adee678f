"""The words a benchmark's result is written in, shared by its driver and its renderer.

A driver (``simulations/bench_*.py``, ``attack.py``) measures and writes a result dict; a
renderer (:mod:`fedrec.simulations.reports`) reads it and never imports the driver. What
both need lives here: metric keys, the ids of arms and rows with their display labels,
and the small pure helpers both apply to a result.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from fedrec.shared.evaluation.stats import mean_and_se

K = 10  # the cut-off of the benchmarks' ranking metrics
NDCG = f"ndcg@{K}_full"  # NDCG@10 under full ranking, the headline metric

# How reports name the data sets a result names (``dataset``: the data config's id).
DATASET_LABELS = {"ml-100k": "ML-100K", "ml-1m": "ML-1M", "ml-latest": "ML-latest"}


def dataset_label(dataset: str) -> str:
    """A data set's name in a report's prose: ``"ML-100K"`` for ``"ml-100k"``."""
    return DATASET_LABELS.get(dataset, dataset)


# Student's t at 97.5% by degrees of freedom: the few draws a benchmark repeats.
T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306}


def mean_interval(values: Sequence[float]) -> dict[str, float]:
    """Mean, standard error and the t-based 95% interval of the mean of a few draws."""
    stats = mean_and_se(values)
    n = len(values)
    half = T_975.get(n - 1, 1.96) * stats["se"] if n > 1 else 0.0
    return {**stats, "low": stats["mean"] - half, "high": stats["mean"] + half, "n": float(n)}


# -- attack.py -------------------------------------------------------------------------------

PRIOR = "public-prior"  # the global model's item bias: what the server knows without an update


# -- new users from liked items (bench_liked.py) ------------------------------------------

LIKED_DRAWS = ("first", "random")  # which of a user's liked items are given: its first, or drawn
LIKED_REFERENCES = ("popularity", "item-kNN", "EASE", "item-kNN + log popularity")


# -- privacy (bench_privacy.py) ------------------------------------------------------------

# The user-level curves: the level name of each placement, and how it is labelled.
PLACEMENT_LEVELS = {"user": "central", "local": "local", "secagg": "secagg"}


def point_at(points: Sequence[dict[str, Any]], eps: float) -> dict[str, Any] | None:
    """The point calibrated for target ``eps`` (``None`` where the curve has none)."""
    for p in points:
        if math.isclose(float(p["calibration"]["target"]), eps):
            return p
    return None
