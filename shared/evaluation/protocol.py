"""Leave-one-out evaluation: rank each user's held-out item, then summarise.

Two protocols, reported side by side:

* **Full ranking** (:func:`~fedrec.shared.evaluation.ranking.full_rank`): the held-out item
  is ranked against every item the user has not trained on. This is the honest number.
* **Sampled** (:func:`~fedrec.shared.evaluation.ranking.sample_negatives`,
  :func:`~fedrec.shared.evaluation.ranking.sampled_rank`): the held-out item is ranked
  against 99 items the user never interacted with, as much of the literature does (NCF and
  followers). Sampled metrics are inflated and may even order models differently from full
  ranking; they are kept only for comparison with published numbers.

How one user's item is ranked (ties pessimistic, NaN never helps) is
:mod:`~fedrec.shared.evaluation.ranking`'s job.

The per-user step, :func:`evaluate_user`, needs nothing but the user's own scores, so a
federated client runs it on its private data and sends only :func:`summarize`'s aggregates;
the server combines those with :func:`aggregate_client_metrics`. :func:`evaluate_model` runs
the same per-user step centrally over a whole :class:`~fedrec.shared.data.dataset.Split`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from fedrec.shared.data.dataset import Split
from fedrec.shared.evaluation.metrics import (
    catalogue_coverage,
    genre_matrix,
    hit_rate_at_k,
    intra_list_diversity,
    mean_popularity_rank,
    mrr_at_k,
    ndcg_at_k,
    popularity_rank,
)
from fedrec.shared.evaluation.ranking import (
    _as_items,
    _candidate_mask,
    _check_item,
    _check_k,
    _check_negatives,
    _check_scores,
    _full_rank,
    _rank_against,
    _top_k,
    full_rank,
    sample_negatives,
)

logger = logging.getLogger(__name__)

ScoreFn = Callable[[np.ndarray], np.ndarray]
"""Maps a batch of user indices ``[batch]`` to a score matrix ``[batch, n_items]``."""

_SUMMED_KEYS = ("n_users", "n_clients")


@dataclass(frozen=True, eq=False)
class UserEval:
    """One user's evaluation: ranks under both protocols and the recommended list.

    ``top_k`` is read-only. Instances compare by identity (the array has no scalar ``==``).
    """

    rank_full: int
    rank_sampled: int
    top_k: np.ndarray


def evaluate_user(
    scores: np.ndarray,
    *,
    target: int,
    exclude: np.ndarray | Sequence[int],
    negatives: np.ndarray | Sequence[int],
    k: int = 10,
) -> UserEval:
    """Evaluate one user from their private scores; what a federated client runs locally.

    Args:
        scores: ``[n_items]`` model scores for this user.
        target: the held-out item (test or validation).
        exclude: non-candidates for full ranking and top-k: the user's training items plus
            the other held-out item (validation when evaluating test, and vice versa).
        negatives: the user's sampled negatives (:func:`sample_negatives`).
        k: length of the recommended list.
    """
    scores = _check_scores(scores)
    _check_k(k)
    n_items = scores.shape[0]
    target = _check_item(target, n_items, "target")
    exclude = _as_items(exclude, n_items, "exclude")
    negatives = _check_negatives(negatives, n_items, target)
    mask = _candidate_mask(n_items, exclude, target)
    recommended = _top_k(scores, mask, k)
    recommended.setflags(write=False)
    return UserEval(
        rank_full=_full_rank(scores, target, mask),
        rank_sampled=_rank_against(scores, target, scores[negatives]),
        top_k=recommended,
    )


# ---------------------------------------------------------------- aggregation


def summarize(evals: Sequence[UserEval], *, k: int, n_items: int) -> dict[str, float]:
    """Average per-user evaluations into the reported metrics.

    Returns keys ``hr@{k}_full``, ``ndcg@{k}_full``, ``mrr@{k}_full``, ``hr@{k}_sampled``,
    ``ndcg@{k}_sampled``, ``coverage@{k}`` and ``n_users``. With no users the rate metrics
    are NaN and coverage is 0. Coverage uses the first ``k`` items of each list.
    """
    _check_k(k)
    ranks_full = np.array([e.rank_full for e in evals], dtype=np.int64)
    ranks_sampled = np.array([e.rank_sampled for e in evals], dtype=np.int64)

    def mean(values: np.ndarray) -> float:
        return float(values.mean()) if values.size else float("nan")

    lists = [np.asarray(e.top_k[:k], dtype=np.int64) for e in evals]
    recommended = np.concatenate(lists) if lists else np.zeros(0, dtype=np.int64)
    return {
        f"hr@{k}_full": mean(hit_rate_at_k(ranks_full, k)),
        f"ndcg@{k}_full": mean(ndcg_at_k(ranks_full, k)),
        f"mrr@{k}_full": mean(mrr_at_k(ranks_full, k)),
        f"hr@{k}_sampled": mean(hit_rate_at_k(ranks_sampled, k)),
        f"ndcg@{k}_sampled": mean(ndcg_at_k(ranks_sampled, k)),
        f"coverage@{k}": catalogue_coverage(recommended, n_items),
        "n_users": float(len(evals)),
    }


def list_metrics(
    lists: Sequence[np.ndarray],
    *,
    k: int,
    item_counts: np.ndarray,
    genres: Sequence[Sequence[str]] | None = None,
) -> dict[str, float]:
    """Beyond accuracy: how novel and how varied the recommended lists are.

    Args:
        lists: each user's recommended items, best first (the first ``k`` are used).
        k: list length.
        item_counts: ``[n_items]`` training interaction counts (popularity).
        genres: each item's genre names; without it, or when no item has a genre, the
            diversity key is left out.

    Returns:
        ``mean_pop_rank@{k}``: the mean over users of their list's mean popularity rank
        (1 = most popular item; higher is more novel), and ``ild_genres@{k}``: the mean
        intra-list diversity over genres (cosine distance, 0 = every item has the same
        genres). Users whose lists are too short for a metric do not count in its mean.
    """
    _check_k(k)
    n_items = int(np.asarray(item_counts).shape[0])
    top = np.full((len(lists), k), -1, dtype=np.int64)
    for row, items in enumerate(lists):
        head = np.asarray(items, dtype=np.int64)[:k]
        top[row, : head.size] = head

    def mean(values: np.ndarray) -> float:
        kept = values[~np.isnan(values)]
        return float(kept.mean()) if kept.size else float("nan")

    out = {f"mean_pop_rank@{k}": mean(mean_popularity_rank(top, popularity_rank(item_counts)))}
    if genres is not None:
        if len(genres) != n_items:
            raise ValueError(f"genres lists {len(genres)} items, item_counts {n_items}")
        features = genre_matrix(genres)
        if features.shape[1]:
            out[f"ild_genres@{k}"] = mean(intra_list_diversity(top, features))
    return out


def aggregate_client_metrics(records: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Combine per-client :func:`summarize` outputs on the server, weighting by ``n_users``.

    Every record must carry the same keys, including ``n_users``; a record may carry
    ``n_clients`` (an already aggregated group), otherwise it counts as one client. Records
    with ``n_users == 0`` carry no information and are skipped (their NaNs included).

    Caveat: ``coverage@k`` comes back as the weighted mean of per-client coverages, which
    is *not* catalogue coverage (coverage does not add up across clients). Use the central
    :func:`evaluate_model` for catalogue coverage.

    Returns:
        The metric keys as weighted means, plus ``n_users`` and ``n_clients`` totals.
    """
    if not records:
        return {"n_users": 0.0, "n_clients": 0.0}
    keys = set(records[0])
    if "n_users" not in keys:
        raise ValueError("every client record needs 'n_users' (from summarize) to weight it")
    for index, record in enumerate(records):
        if set(record) != keys:
            raise ValueError(
                f"client record {index} has keys {sorted(record)} but record 0 has "
                f"{sorted(keys)}; every client must report the same metrics"
            )
    weights = np.array([float(r["n_users"]) for r in records])
    if (weights < 0).any() or not np.isfinite(weights).all():
        raise ValueError(f"n_users must be finite and >= 0, got {weights.tolist()}")
    n_clients = sum(float(r.get("n_clients", 1.0)) for r in records)
    total = float(weights.sum())
    used = weights > 0
    result: dict[str, float] = {}
    for key in sorted(keys - set(_SUMMED_KEYS)):
        values = np.array([float(r[key]) for r in records])
        result[key] = (
            float(np.dot(weights[used], values[used]) / total) if total > 0 else float("nan")
        )
    result["n_users"] = total
    result["n_clients"] = float(n_clients)
    return result


# ---------------------------------------------------------------- central evaluator


def _held_out(split: Split, target: str) -> tuple[np.ndarray, np.ndarray]:
    """The ranked held-out items and the other held-out items of ``target``."""
    if target == "test":
        return split.test_items, split.valid_items
    return split.valid_items, split.test_items


def _excluded(train: np.ndarray, other: int) -> np.ndarray:
    """What a user's full ranking leaves out: its train items and its other held-out item."""
    return np.append(train, other) if other >= 0 else train


def user_ndcgs(
    score_fn: ScoreFn,
    split: Split,
    users: np.ndarray,
    *,
    k: int = 10,
    target: Literal["test", "valid"] = "test",
    batch_size: int = 256,
) -> np.ndarray:
    """Each of ``users``' NDCG@k (full ranking, as :func:`evaluate_model` ranks), for pairing.

    Every user must have a ``target`` item.
    """
    _check_k(k)
    held_out, other = _held_out(split, target)
    users = np.asarray(users, dtype=np.int64)
    if users.size and (held_out[users] < 0).any():
        raise ValueError(f"every user needs a {target} item")
    train_items = split.train_items_by_user()
    ranks = np.zeros(users.size, dtype=np.int64)
    for start in range(0, users.size, batch_size):
        batch = users[start : start + batch_size]
        for i, (row, user) in enumerate(zip(score_fn(batch), batch, strict=True), start):
            exclude = _excluded(train_items[user], int(other[user]))
            ranks[i] = full_rank(row, int(held_out[user]), exclude)
    return ndcg_at_k(ranks, k)


def evaluate_model(
    score_fn: ScoreFn,
    split: Split,
    *,
    k: int = 10,
    target: Literal["test", "valid"] = "test",
    seed: int = 42,
    users: np.ndarray | None = None,
    batch_size: int = 256,
    genres: Sequence[Sequence[str]] | None = None,
) -> dict[str, float]:
    """Evaluate a model on every user of ``split`` (or ``users``) with a held-out item.

    Args:
        score_fn: maps a batch of user indices to a ``[batch, n_items]`` score matrix.
        split: the leave-last-out split; users whose ``target`` item is ``-1`` are skipped.
        k: list length of every ``@k`` metric.
        target: ``"test"`` ranks the test item with train and validation items excluded;
            ``"valid"`` ranks the validation item with train *and test* items excluded (so
            the future item neither competes nor leaks).
        seed: seed of the sampled negatives (:func:`sample_negatives`), drawn from items
            outside train ∪ validation ∪ test, identical for both targets and every model.
        users: optional subset of user indices; default all users.
        batch_size: users scored per ``score_fn`` call.
        genres: each item's genres (the catalogue's ``genres``, empty lists where
            unknown). When given, :func:`list_metrics`' novelty and diversity keys are
            added (popularity counted on the training interactions).

    Returns:
        :func:`summarize`'s dictionary (and :func:`list_metrics`' with ``genres``).
    """
    if target not in ("test", "valid"):
        raise ValueError(f"target must be 'test' or 'valid', got {target!r}")
    _check_k(k)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    held_out, other = _held_out(split, target)
    if users is None:
        users = np.arange(split.n_users)
    users = np.asarray(users, dtype=np.int64)
    if users.size and (users.min() < 0 or users.max() >= split.n_users):
        raise ValueError(f"users must be indices in [0, {split.n_users})")
    users = users[held_out[users] >= 0]

    started = time.perf_counter()
    train_items = split.train_items_by_user()
    evals: list[UserEval] = []
    n_nan = 0
    for start in range(0, users.size, batch_size):
        batch = users[start : start + batch_size]
        scores = np.asarray(score_fn(batch))
        if scores.shape != (batch.size, split.n_items):
            raise ValueError(
                f"score_fn returned shape {scores.shape} for {batch.size} users; "
                f"expected ({batch.size}, {split.n_items})"
            )
        if np.issubdtype(scores.dtype, np.floating):
            n_nan += int(np.isnan(scores).any(axis=1).sum())
        for row, user in zip(scores, batch, strict=True):
            # Full ranking drops train items and the other held-out item; the negatives
            # avoid everything the user ever interacted with, so both targets share them.
            exclude = _excluded(train_items[user], int(other[user]))
            interacted = np.append(exclude, held_out[user])
            negatives = sample_negatives(split.n_items, interacted, seed=seed, user=int(user))
            evals.append(
                evaluate_user(
                    row, target=int(held_out[user]), exclude=exclude, negatives=negatives, k=k
                )
            )
    if n_nan:
        logger.warning(
            "%d of %d users got NaN scores; they count as ranked worst (is training diverging?)",
            n_nan,
            users.size,
        )
    metrics = summarize(evals, k=k, n_items=split.n_items)
    if genres is not None:
        counts = np.bincount(split.train.items, minlength=split.n_items)
        metrics |= list_metrics([e.top_k for e in evals], k=k, item_counts=counts, genres=genres)
    logger.debug(
        "evaluated %d users on %s in %.2fs", len(evals), target, time.perf_counter() - started
    )
    return metrics
