"""Statistics of evaluations: AUC, TPR at a low FPR, standard errors, paired differences.

One place for the uncertainty every report states: per-user values are averaged with a
standard error, two models on the same users are compared user by user, and an attack's
scores are judged by ROC AUC and by its true-positive rate where false positives are rare.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC AUC: P(score of a positive > score of a negative), ties counting one half.

    Computed from tie-averaged ranks (Mann-Whitney U); ``nan`` when either class is empty.
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    n_pos = int(y.sum())
    n_neg = int(y.size - n_pos)
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    _, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    upper = np.cumsum(counts)  # 1-based rank of the last member of each tie group
    mean_rank = upper - (counts - 1) / 2.0
    rank_sum = float(mean_rank[inverse][y].sum())
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def tpr_at_fpr(scores: np.ndarray, labels: np.ndarray, fpr: float = 0.01) -> float:
    """The share of positives scored above a threshold that at most ``fpr`` of negatives pass.

    The threshold is the ``(floor(fpr x negatives) + 1)``-th highest negative score, and a
    positive counts only if strictly above it (ties go against the attacker), so the
    false-positive rate is at most ``fpr``. An attack that guesses has TPR ≈ ``fpr``: what
    matters for membership is being sure about a few items, not the average ranking (AUC).
    ``nan`` when either class is empty.
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    neg = np.sort(s[~y])[::-1]
    if neg.size == 0 or not y.any():
        return float("nan")
    allowed = int(math.floor(fpr * neg.size))
    threshold = neg[allowed] if allowed < neg.size else -math.inf
    return float(np.mean(s[y] > threshold))


def standard_error(values: np.ndarray | Sequence[float]) -> float:
    """The standard error of the mean of ``values`` (``nan`` with fewer than 2)."""
    x = np.asarray(values, dtype=np.float64)
    if x.size < 2:
        return float("nan")
    return float(x.std(ddof=1) / math.sqrt(x.size))


def mean_and_se(values: Sequence[float]) -> dict[str, float]:
    """``{"mean", "se", "n"}`` of the non-NaN ``values`` (NaN mean and SE when none)."""
    arr = np.array([v for v in values if not math.isnan(v)], dtype=np.float64)
    if arr.size == 0:
        return {"mean": float("nan"), "se": float("nan"), "n": 0}
    return {"mean": float(arr.mean()), "se": standard_error(arr), "n": int(arr.size)}


def paired_standard_error(
    a: np.ndarray | Sequence[float], b: np.ndarray | Sequence[float]
) -> float:
    """The standard error of the mean per-user difference ``a - b`` (``nan`` if unpaired)."""
    x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if x.shape != y.shape or x.size < 2:
        return float("nan")
    return standard_error(x - y)


@dataclass(frozen=True)
class PairedDifference:
    """Mean of per-user differences ``a - b`` with its standard error and a 95% interval."""

    mean: float
    se: float
    low: float
    high: float
    n: int


def paired_difference(
    a: np.ndarray | Sequence[float], b: np.ndarray | Sequence[float]
) -> PairedDifference:
    """Compare two models on the same users (``a[u]`` and ``b[u]`` are one user's values).

    Pairing removes the between-user spread, which dominates a leave-one-out metric: two
    models whose means differ by less than their unpaired standard errors can still differ
    clearly user by user. The interval is Student's t at 95% (mean ± t SE), which for a
    few hundred users is the normal mean ± 1.96 SE and for a handful of repeated runs is
    much wider, as it should be.
    """
    x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"need two 1-D arrays over the same users, got {x.shape} and {y.shape}")
    if x.size < 2:
        raise ValueError(f"need at least 2 users, got {x.size}")
    d = x - y
    mean = float(d.mean())
    se = standard_error(d)
    from scipy.stats import t as student_t  # scipy.stats is slow and large to import: only here

    t = float(student_t.ppf(0.975, d.size - 1))
    return PairedDifference(mean, se, mean - t * se, mean + t * se, int(d.size))
