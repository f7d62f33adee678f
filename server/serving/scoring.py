"""A new user's vector and scores, from the items they like and the text they write.

The server never holds a user's private factor. A new user is placed in the factor space
from what they tell us: items they like, free text, or both.

- Liked items: a start vector (MF only: the mean of their factors; hybrid: that mean
  averaged with the user head over their texts; co-occurrence: its own user vector) is
  refined by fold-in, a few seeded BPR steps on the liked items with the item side frozen.
- Free text contributes the user head applied to its embedding; given together with liked
  items, the two start vectors are averaged before the fold-in.
- The fold-in's vector then counts at :data:`FOLD_IN_WEIGHT` against the item bias: fit to
  a few items it is sure of itself and its scores swamp the bias, the model's learned
  popularity, which alone already ranks a new user's items as well as popularity counts.
  The weight was chosen on one seed's held-out users and checked on others
  (docs/benchmarks/coldstart.md, the sweep table).
- A co-occurrence model with the release's popularity (``item_prior``) scores liked items
  as item-kNN does (:func:`similar_to_liked`): the log popularity plus a weight times the
  summed cosine of the liked items' factors. Its weight (``cooccurrence-liked-similarity``)
  was chosen on a development seed's held-out users, among the weights whose answers to
  fixed liked-item profiles stay in the profiles' genres (docs/benchmarks/coldstart-liked.md).
- Fold-in is skipped for a model trained under DP (record- or user-level): every item row
  then carries noise, and fitting a user vector to a few liked items' exact rows fits that
  noise (docs/benchmarks/coldstart-dp.md has the comparison).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from fedrec.server.serving.tables import Tables
from fedrec.shared.evaluation.ranking import top_k
from fedrec.shared.models.cooccurrence import user_vector

# How much a folded-in user vector counts against the item bias (module docstring).
FOLD_IN_WEIGHT = 0.2


def liked_vector(
    t: Tables,
    liked: np.ndarray,
    *,
    user_part: Callable[[np.ndarray], np.ndarray] | None = None,
    content_split: tuple[int, float] | None = None,
) -> np.ndarray:
    """The start vector of liked item indices (module docstring).

    ``user_part`` is the user head, when liked items also count through their texts;
    ``content_split`` the (collaborative columns, fade) of a co-occurrence model.
    """
    if content_split is not None:
        rank, fade = content_split
        return user_vector(t.q, liked, rank=rank, fade=fade).astype(np.float32)
    vec = t.q[liked].mean(axis=0)
    if user_part is not None:
        vec = 0.5 * (vec + user_part(t.emb[liked]).mean(axis=0))
    return vec  # type: ignore[no-any-return]


def liked_similarity(t: Tables, liked: np.ndarray) -> np.ndarray:
    """``[n, len(liked)]``: the cosine of every item's factors with each liked item's.

    A co-occurrence model's factors hold its collaborative part and the items' public text
    part, so an item whose collaborative part is mostly noise (a rarely held one, under DP)
    is still placed by its text. A trained liked item's cosines with the trained items are
    read off :attr:`Tables.gram` where the tables keep it; the rest are computed.
    """
    if t.gram is None:
        return (t.unit @ t.unit[liked].T).astype(np.float64)  # type: ignore[no-any-return]
    n0 = len(t.gram)
    out = np.empty((len(t.ids), liked.size), np.float64)
    trained = liked < n0
    held, added = liked[trained], liked[~trained]
    if held.size:
        out[:n0, trained] = t.gram[held].T  # symmetric: the liked items' rows
        out[n0:, trained] = t.unit[n0:] @ t.unit[held].T
    if added.size:
        out[:, ~trained] = t.unit @ t.unit[added].T
    return out


def similar_to_liked(
    t: Tables, liked: np.ndarray, *, weight: float, sims: np.ndarray | None = None
) -> np.ndarray:
    """A co-occurrence model's scores from liked items: ``prior + weight · Σ cos``.

    ``prior`` is the log of the release's item popularity; ``Σ cos`` sums
    :func:`liked_similarity` over the liked items, so each liked item adds its evidence.
    Without liked items, the prior alone. ``sims``: that similarity, if already computed.
    """
    prior = t.prior.astype(np.float64)
    if not liked.size:
        return prior
    if sims is None:
        sims = liked_similarity(t, liked)
    return prior + weight * sims.sum(axis=1)  # type: ignore[no-any-return]


def fold_in(
    t: Tables,
    liked: np.ndarray,
    start: np.ndarray | None = None,
    *,
    steps: int = 100,
    lr: float = 0.5,
    reg: float = 0.05,
    negatives: int = 64,
    seed: int = 0,
) -> np.ndarray:
    """A user vector fit to ``liked`` with the item side frozen (MF "fold-in").

    BPR of each liked item against uniformly drawn items, L2-regularised towards
    ``start`` (default: zero), by gradient descent: what a client's personalisation
    does, run here on the few items a new user sends. Seeded, so answers are stable.
    """
    q, b = t.q, t.b
    rng = np.random.default_rng(seed)
    anchor = np.zeros(q.shape[1], np.float64) if start is None else start.astype(np.float64)
    u = anchor.copy()
    q_pos, b_pos = q[liked].astype(np.float64), b[liked].astype(np.float64)
    for _ in range(steps):
        neg = rng.integers(0, len(t.ids), size=(len(liked), negatives))
        diff = q_pos[:, None, :] - q[neg]  # [L, N, d]
        x = diff @ u + (b_pos[:, None] - b[neg])
        weight = 1.0 / (1.0 + np.exp(np.clip(x, -30, 30)))  # -d/dx log sigmoid(x)
        grad = -(weight[..., None] * diff).mean(axis=(0, 1)) + reg * (u - anchor)
        u -= lr * grad
    return u.astype(np.float32)


def new_user(
    t: Tables, liked: np.ndarray, starts: Sequence[np.ndarray], *, fold_in_weight: float | None
) -> np.ndarray:
    """The user vector: the mean of ``starts``, folded in from there at ``fold_in_weight``.

    Without liked items, or with no weight (``None``: a DP-trained model), the mean alone.
    """
    if not starts:
        raise ValueError("give liked item ids, text, or both")
    user = np.mean(starts, axis=0)
    if liked.size and fold_in_weight is not None:
        user = fold_in_weight * fold_in(t, liked, start=user)
    return user  # type: ignore[no-any-return]


def top(scores: np.ndarray, exclude: np.ndarray, k: int) -> np.ndarray:
    """The evaluation's own top-k (ties by item index); never a non-finite score."""
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    best = top_k(scores, exclude, k)
    return best[np.isfinite(scores[best])]


def nearest_texts(emb: np.ndarray, query: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``m`` rows of ``emb`` nearest ``query`` and their weights.

    Weights are a softmax of cosine similarities (temperature 0.05), so the closest
    texts dominate.
    """
    sims = emb @ query
    best = np.argsort(-sims, kind="stable")[: min(m, len(sims))]
    logits = (sims[best] - sims[best].max()) / 0.05
    weights = np.exp(logits) / np.exp(logits).sum()
    return best, weights
