"""Rank-based recommendation metrics for leave-one-out evaluation.

A *rank* is the 0-based position of a user's held-out item among the candidates the model
ranked it against (0 = recommended first). Every per-user metric here is vectorised over an
array of ranks and returns the per-user values; the caller averages them, so sums,
weighted means and confidence intervals stay possible.

>>> ranks = np.array([0, 1, 12])
>>> hit_rate_at_k(ranks, 10)
array([1., 1., 0.])
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

import numpy as np

from fedrec.shared.evaluation.ranking import _check_k

logger = logging.getLogger(__name__)


def _as_ranks(ranks: np.ndarray | Sequence[int]) -> np.ndarray:
    array = np.asarray(ranks)
    if array.size == 0:
        return array.astype(np.int64)
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(
            f"ranks must be integers (0-based positions of the held-out item), "
            f"got dtype {array.dtype}"
        )
    if (array < 0).any():
        raise ValueError(
            f"ranks must be >= 0 (0 = the held-out item came first), got min {array.min()}"
        )
    return array


def hit_rate_at_k(ranks: np.ndarray | Sequence[int], k: int) -> np.ndarray:
    """Per-user hit rate: 1.0 where the held-out item is in the top ``k``, else 0.0.

    Args:
        ranks: 0-based ranks of each user's held-out item, any shape.
        k: list length, ``>= 1``.

    Returns:
        A float64 array of the same shape as ``ranks``.
    """
    _check_k(k)
    return (_as_ranks(ranks) < k).astype(np.float64)


def ndcg_at_k(ranks: np.ndarray | Sequence[int], k: int) -> np.ndarray:
    """Per-user NDCG with one relevant item: ``1 / log2(rank + 2)`` if ``rank < k``, else 0.

    With a single relevant item the ideal DCG is 1, so this is already normalised.
    """
    _check_k(k)
    array = _as_ranks(ranks)
    gains = 1.0 / np.log2(array.astype(np.float64) + 2.0)
    return np.where(array < k, gains, 0.0)


def mrr_at_k(ranks: np.ndarray | Sequence[int], k: int) -> np.ndarray:
    """Per-user reciprocal rank: ``1 / (rank + 1)`` if ``rank < k``, else 0."""
    _check_k(k)
    array = _as_ranks(ranks)
    return np.where(array < k, 1.0 / (array.astype(np.float64) + 1.0), 0.0)


def recall_at_k(top_k: np.ndarray, relevant: Sequence[np.ndarray]) -> np.ndarray:
    """Per-user recall with several held-out items: ``|top_k[u] ∩ relevant[u]| / |relevant[u]|``.

    Args:
        top_k: ``[n_users, k]`` recommended item indices; negative entries are padding
            (a user with fewer than ``k`` candidates) and never count as hits.
        relevant: one array of held-out item indices per user (duplicates count once).

    Returns:
        A float64 array ``[n_users]``. Users with no relevant item get NaN (recall is
        undefined for them), so average with ``np.nanmean`` or drop them first.
    """
    lists = np.asarray(top_k)
    if lists.ndim != 2:
        raise ValueError(f"top_k must be a 2-D [n_users, k] array, got shape {lists.shape}")
    if len(relevant) != lists.shape[0]:
        raise ValueError(
            f"relevant has {len(relevant)} entries but top_k has {lists.shape[0]} rows; "
            "pass one array of held-out items per user"
        )
    recall = np.full(lists.shape[0], np.nan, dtype=np.float64)
    for user, (row, items) in enumerate(zip(lists, relevant, strict=True)):
        wanted = np.unique(np.asarray(items))
        if wanted.size == 0:
            continue
        recommended = row[row >= 0]
        recall[user] = np.isin(wanted, recommended).sum() / wanted.size
    return recall


def catalogue_coverage(top_k: np.ndarray, n_items: int) -> float:
    """Share of the catalogue that appears in at least one top-k list.

    Args:
        top_k: recommended item indices of any shape (usually ``[n_users, k]``); negative
            entries are padding and ignored.
        n_items: catalogue size, ``>= 1``.

    Returns:
        ``#distinct recommended items / n_items``, in ``[0, 1]``.
    """
    if n_items < 1:
        raise ValueError(f"n_items must be >= 1, got {n_items}")
    items = np.asarray(top_k).ravel()
    if items.size == 0:
        return 0.0
    if not np.issubdtype(items.dtype, np.integer):
        raise ValueError(f"top_k must hold integer item indices, got dtype {items.dtype}")
    items = items[items >= 0]
    if items.size and items.max() >= n_items:
        raise ValueError(
            f"top_k holds item {items.max()} but the catalogue has only {n_items} items"
        )
    return float(np.unique(items).size / n_items)


def ndcg_multi_at_k(top_k: np.ndarray, relevant: Sequence[np.ndarray]) -> np.ndarray:
    """Per-user NDCG@k with several relevant items (binary gains).

    ``DCG = sum over hits at position r of 1 / log2(r + 2)``; the ideal DCG puts
    ``min(|relevant|, k)`` hits first. ``k`` is ``top_k.shape[1]``; negative entries are
    padding. Users with no relevant item get NaN. With one relevant item this equals
    :func:`ndcg_at_k` of its rank.
    """
    lists = np.asarray(top_k)
    if lists.ndim != 2:
        raise ValueError(f"top_k must be a 2-D [n_users, k] array, got shape {lists.shape}")
    if len(relevant) != lists.shape[0]:
        raise ValueError(f"relevant has {len(relevant)} entries, top_k {lists.shape[0]} rows")
    k = lists.shape[1]
    discounts = 1.0 / np.log2(np.arange(k, dtype=np.float64) + 2.0)
    out = np.full(lists.shape[0], np.nan, dtype=np.float64)
    for user, (row, items) in enumerate(zip(lists, relevant, strict=True)):
        wanted = np.unique(np.asarray(items))
        if wanted.size == 0:
            continue
        hits = np.isin(row, wanted) & (row >= 0)
        out[user] = float(discounts[hits].sum() / discounts[: min(wanted.size, k)].sum())
    return out


def hit_multi_at_k(top_k: np.ndarray, relevant: Sequence[np.ndarray]) -> np.ndarray:
    """Per-user hit rate with several relevant items: 1.0 if any is in the list (NaN: none)."""
    recall = recall_at_k(top_k, relevant)
    return np.where(np.isnan(recall), np.nan, (recall > 0).astype(np.float64))


def _as_lists(top_k: np.ndarray, n_items: int) -> np.ndarray:
    lists = np.asarray(top_k)
    if lists.ndim != 2:
        raise ValueError(f"top_k must be a 2-D [n_users, k] array, got shape {lists.shape}")
    if lists.size and not np.issubdtype(lists.dtype, np.integer):
        raise ValueError(f"top_k must hold integer item indices, got dtype {lists.dtype}")
    if lists.size and lists.max() >= n_items:
        raise ValueError(f"top_k holds item {lists.max()} but there are only {n_items} items")
    return lists.astype(np.int64, copy=False)


def genre_matrix(genres: Sequence[Sequence[str]]) -> np.ndarray:
    """Items' genres as a 0/1 ``[n_items, n_genres]`` matrix, genre columns sorted by name."""
    names = sorted({g for item in genres for g in item})
    column = {name: j for j, name in enumerate(names)}
    matrix = np.zeros((len(genres), len(names)), dtype=np.float64)
    for i, item in enumerate(genres):
        matrix[i, [column[g] for g in item]] = 1.0
    return matrix


def intra_list_diversity(top_k: np.ndarray, features: np.ndarray) -> np.ndarray:
    """Per-user intra-list diversity: mean pairwise cosine distance within the list.

    ``ILD(L) = mean over pairs i < j in L of (1 - cos(f_i, f_j))`` (Ziegler et al. 2005),
    with ``f`` the items' feature rows (e.g. :func:`genre_matrix`, or item factors). An item
    whose features are all zero is at cosine 0 (distance 1) from every other item.

    Args:
        top_k: ``[n_users, k]`` recommended item indices; negative entries are padding.
        features: ``[n_items, n_features]``.

    Returns:
        A float64 array ``[n_users]``; NaN for lists of fewer than two items.
    """
    feats = np.asarray(features, dtype=np.float64)
    if feats.ndim != 2:
        raise ValueError(f"features must be a 2-D [n_items, n] array, got shape {feats.shape}")
    lists = _as_lists(top_k, feats.shape[0])
    norms = np.linalg.norm(feats, axis=1, keepdims=True)
    unit = np.divide(feats, norms, out=np.zeros_like(feats), where=norms > 0)
    out = np.full(lists.shape[0], np.nan, dtype=np.float64)
    for user, row in enumerate(lists):
        items = row[row >= 0]
        m = items.size
        if m < 2:
            continue
        vectors = unit[items]
        sim = vectors @ vectors.T
        pairs = (sim.sum() - np.trace(sim)) / 2.0
        out[user] = 1.0 - pairs / (m * (m - 1) / 2.0)
    return out


def popularity_rank(counts: np.ndarray | Sequence[float]) -> np.ndarray:
    """Every item's 1-based rank by interaction count (1 = most popular; ties share the mean)."""
    values = np.asarray(counts, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"counts must be a 1-D [n_items] array, got shape {values.shape}")
    from scipy.stats import rankdata  # scipy.stats is slow and large to import: only here

    return np.asarray(rankdata(-values, method="average"), dtype=np.float64)


def mean_popularity_rank(top_k: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """Per-user mean :func:`popularity_rank` of the recommended items (higher = more novel).

    Args:
        top_k: ``[n_users, k]`` recommended item indices; negative entries are padding.
        ranks: ``[n_items]`` popularity ranks.

    Returns:
        A float64 array ``[n_users]``; NaN for empty lists.
    """
    rank = np.asarray(ranks, dtype=np.float64)
    lists = _as_lists(top_k, rank.shape[0])
    valid = lists >= 0
    picked = np.where(valid, rank[np.where(valid, lists, 0)], 0.0)
    counts = valid.sum(axis=1)
    out = np.full(lists.shape[0], np.nan, dtype=np.float64)
    has = counts > 0
    out[has] = picked.sum(axis=1)[has] / counts[has]
    return out


_YEAR = re.compile(r"\s*\(\d{4}\)\s*$")
_SEQUEL = re.compile(r"(\s+(\d+|[ivx]+|part\s+\w+))+$")


def franchise(title: str) -> str:
    """A title's franchise key: before any colon, without year, sequel number or article."""
    name = _YEAR.sub("", title).lower().split(":")[0]
    name = re.sub(r",\s*(the|a|an)$", "", name.strip())
    name = re.sub(r"^(the|a|an)\s+", "", name)
    name = _SEQUEL.sub("", name)
    return " ".join(name.split()[:2])


def largest_franchise(lists: np.ndarray, keys: Sequence[str]) -> np.ndarray:
    """Per list: how many of its items share the most common :func:`franchise` key.

    A list made of one franchise says little a person did not know; negative entries are
    padding.
    """
    out = np.zeros(len(lists), np.int64)
    for row, items in enumerate(lists):
        seen: dict[str, int] = {}
        for i in items[items >= 0]:
            seen[keys[i]] = seen.get(keys[i], 0) + 1
        out[row] = max(seen.values()) if seen else 0
    return out
