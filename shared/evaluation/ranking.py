"""Ranking one user's held-out item, and the recommended list.

Ties are always broken pessimistically: every other candidate scoring the same as the held-out
item counts as ranked ahead of it, so a constant model ranks it last, never first. NaN scores
never help either: a NaN target ranks last and a NaN candidate counts as ahead of the target
(:func:`top_k` lists NaN-scored items last). Lists are deterministic: equal scores are
ordered by item index.

These are the only ranking helpers: evaluation (:mod:`~fedrec.shared.evaluation.protocol`),
the baselines and the benchmarks all rank with them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# ---------------------------------------------------------------- validation helpers


def _check_scores(scores: np.ndarray) -> np.ndarray:
    array = np.asarray(scores)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"scores must be a non-empty 1-D [n_items] array, got {array.shape}")
    return array


def _check_item(item: int, n_items: int, name: str) -> int:
    if isinstance(item, bool) or not isinstance(item, int | np.integer):
        raise ValueError(f"{name} must be an integer item index, got {item!r}")
    if not 0 <= item < n_items:
        raise ValueError(f"{name} must be an item index in [0, {n_items}), got {item}")
    return int(item)


def _as_items(items: np.ndarray | Sequence[int], n_items: int, name: str) -> np.ndarray:
    array = np.asarray(items)
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(
            f"{name} must be a 1-D array of integer item indices, "
            f"got shape {array.shape} dtype {array.dtype}"
        )
    if array.min() < 0 or array.max() >= n_items:
        raise ValueError(
            f"{name} must hold item indices in [0, {n_items}), "
            f"got values in [{array.min()}, {array.max()}] (drop -1 placeholders first)"
        )
    return array.astype(np.int64, copy=False)


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")


# ---------------------------------------------------------------- core (no validation)


def _candidate_mask(n_items: int, exclude: np.ndarray, target: int) -> np.ndarray:
    mask = np.ones(n_items, dtype=bool)
    mask[exclude] = False
    mask[target] = True
    return mask


def _rank_against(scores: np.ndarray, target: int, others: np.ndarray) -> int:
    """Pessimistic rank of ``target`` among ``others`` (scores of the other candidates).

    ``not (other < target)`` counts higher scores, ties, and NaN on either side as ahead.
    """
    return int(np.count_nonzero(~(others < scores[target])))


def _full_rank(scores: np.ndarray, target: int, mask: np.ndarray) -> int:
    # The target is in the mask and never below itself, so it counts once: subtract it.
    return _rank_against(scores, target, scores[mask]) - 1


def _top_k(scores: np.ndarray, mask: np.ndarray, k: int) -> np.ndarray:
    candidates = np.flatnonzero(mask)  # ascending, so index order breaks ties
    values = scores[candidates].astype(np.float64, copy=True)
    values[np.isnan(values)] = -np.inf
    if candidates.size > k:
        kth = np.argpartition(-values, k - 1)[:k]
        threshold = values[kth].min()
        above = np.flatnonzero(values > threshold)
        at = np.flatnonzero(values == threshold)[: k - above.size]
        keep = np.concatenate((above, at))
        candidates, values = candidates[keep], values[keep]
    order = np.lexsort((candidates, -values))
    return candidates[order]


# ---------------------------------------------------------------- public per-user API


def full_rank(scores: np.ndarray, target: int, exclude: np.ndarray | Sequence[int]) -> int:
    """0-based rank of ``target`` among every item not in ``exclude``.

    Args:
        scores: ``[n_items]`` model scores of one user, higher = better.
        target: the held-out item index.
        exclude: items that are not candidates: the user's training items and, when
            evaluating the test item, the validation item. ``target`` is never excluded,
            even if listed.

    Returns:
        ``#(candidates scoring above target) + #(other candidates scoring equal)``, so a
        constant model gets ``n_candidates - 1``.
    """
    scores = _check_scores(scores)
    n_items = scores.shape[0]
    target = _check_item(target, n_items, "target")
    exclude = _as_items(exclude, n_items, "exclude")
    return _full_rank(scores, target, _candidate_mask(n_items, exclude, target))


# Negatives per user in the sampled protocol, as NCF and much of the literature use.
SAMPLED_NEGATIVES = 99


def sample_negatives(
    n_items: int,
    exclude: np.ndarray | Sequence[int],
    *,
    n: int = SAMPLED_NEGATIVES,
    seed: int,
    user: int,
) -> np.ndarray:
    """Draw ``n`` distinct items the user never interacted with, the same for every model.

    Args:
        n_items: catalogue size.
        exclude: every item the user interacted with (train, validation and test items).
        n: how many negatives; if fewer items are left, all of them are returned.
        seed: run seed; with ``user`` it seeds ``np.random.default_rng([seed, user])``, so
            the draw depends on nothing else (not the model, the batch, or other users).
        user: the user's global index (a federated client must pass the same index the
            central evaluator uses to get the same negatives).

    Returns:
        Sorted int64 item indices, disjoint from ``exclude``.
    """
    if n < 0:
        raise ValueError(f"n (number of negatives) must be >= 0, got {n}")
    if seed < 0 or user < 0:
        raise ValueError(f"seed and user must be >= 0 to seed the generator, got {seed}, {user}")
    if n_items < 1:
        raise ValueError(f"n_items must be >= 1, got {n_items}")
    exclude = _as_items(exclude, n_items, "exclude")
    allowed = np.ones(n_items, dtype=bool)
    allowed[exclude] = False
    pool = np.flatnonzero(allowed)
    if pool.size <= n:
        return pool
    rng = np.random.default_rng([seed, user])
    return np.sort(rng.choice(pool, size=n, replace=False))


def sampled_rank(scores: np.ndarray, target: int, negatives: np.ndarray | Sequence[int]) -> int:
    """0-based rank of ``target`` among ``negatives`` (ties pessimistic, as :func:`full_rank`).

    Args:
        scores: ``[n_items]`` model scores of one user.
        target: the held-out item index.
        negatives: distinct item indices not containing ``target``
            (see :func:`sample_negatives`).
    """
    scores = _check_scores(scores)
    n_items = scores.shape[0]
    target = _check_item(target, n_items, "target")
    negatives = _check_negatives(negatives, n_items, target)
    return _rank_against(scores, target, scores[negatives])


def _check_negatives(
    negatives: np.ndarray | Sequence[int], n_items: int, target: int
) -> np.ndarray:
    array = _as_items(negatives, n_items, "negatives")
    if np.unique(array).size != array.size:
        raise ValueError("negatives must be distinct items; a duplicate would count twice")
    if (array == target).any():
        raise ValueError(
            f"negatives contain the target item {target}; draw them with sample_negatives "
            "excluding every item the user interacted with"
        )
    return array


def top_k(
    scores: np.ndarray, exclude: np.ndarray | Sequence[int], k: int, *, fill: bool = False
) -> np.ndarray:
    """Return the ``k`` best-scoring items not in ``exclude``, best first.

    Ties are ordered by item index (lower first) and NaN scores sort last, so the list is
    deterministic. Returns fewer than ``k`` items when fewer candidates exist, unless
    ``fill``: then the excluded items follow the candidates (in index order), so that every
    list has ``min(k, n_items)`` entries and lists of one small catalogue stack.
    """
    scores = _check_scores(scores)
    _check_k(k)
    n_items = scores.shape[0]
    allowed = np.ones(n_items, dtype=bool)
    allowed[_as_items(exclude, n_items, "exclude")] = False
    top = _top_k(scores, allowed, k)
    if fill and top.size < min(k, n_items):
        rest = np.flatnonzero(~allowed)[: min(k, n_items) - top.size]
        top = np.concatenate((top, rest))
    return top
