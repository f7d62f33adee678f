"""A user's item co-occurrence as a bounded vector, and the item-item model built on the sum.

EASE (Steck 2019) needs only the Gram matrix ``XᵀX = Σ_u x_u x_uᵀ``, a sum over users: a
federation can compute it exactly under secure aggregation, and under user-level DP it is
a single Gaussian mechanism if every user's term is bounded.

- **Bounded contribution.** User ``u``'s term is ``x_u x_uᵀ / n_u`` (``x_u`` the 0/1
  vector of its ``n_u`` items): Frobenius norm exactly 1, whatever the user holds.
- **The released vector.** The term is symmetric, so it is sent as its upper triangle with
  the off-diagonal entries scaled by ``√2`` (:func:`contribution`): that vector's L2 norm is
  the term's Frobenius norm, so sensitivity 1 under adding or removing a user. Gaussian
  noise ``N(0, σ²)`` on it puts ``σ/√2`` on each off-diagonal entry of the matrix and ``σ``
  on the diagonal (a symmetric, GOE-shaped noise): half the variance of noising the upper
  triangle as it is.
- **The model** (:func:`ease_weights`) is EASE's closed form on the (noisy) Gram
  matrix: post-processing, no further privacy cost.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

SQRT2 = float(np.sqrt(2.0))
# The served tensor of each item's popularity in the release (free-text queries).
ITEM_PRIOR = "item_prior"


@lru_cache(maxsize=4)
def _upper(n_items: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows, cols = np.triu_indices(n_items)
    scale = np.where(rows == cols, 1.0, SQRT2)
    for a in (rows, cols, scale):
        a.setflags(write=False)
    return rows, cols, scale


def vector_size(n_items: int) -> int:
    """Entries of the released upper triangle: ``n (n + 1) / 2``."""
    return n_items * (n_items + 1) // 2


def rows_of(start: int, end: int, n_items: int) -> tuple[int, int]:
    """The first and last row of the upper triangle that entries ``[start, end)`` fall in."""
    i = np.arange(n_items, dtype=np.int64)
    row_starts = i * n_items - (i * (i - 1)) // 2
    first, last = np.searchsorted(row_starts, [start, end - 1], side="right") - 1
    return int(first), int(last)


def contribution_entries(
    items: np.ndarray, n_items: int, rows: tuple[int, int] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """A user's term as (positions, values): the nonzero entries of :func:`contribution`.

    One entry per pair of the user's items, ``n_u (n_u + 1) / 2`` of them, positions
    increasing; with ``rows`` (first, last: :func:`rows_of`) only the pairs whose smaller
    item is in those rows, so a slice of the release costs its own pairs, not all of them.
    """
    unique = np.unique(np.asarray(items, dtype=np.int64))
    if unique.size and (unique[0] < 0 or unique[-1] >= n_items):
        raise ValueError(f"item indices must be in [0, {n_items}), got {unique[[0, -1]]}")
    lo, hi = (0, unique.size) if rows is None else np.searchsorted(unique, [rows[0], rows[1] + 1])
    # Pairs a <= b of indices into ``unique``, a in [lo, hi), row-major as np.triu_indices.
    counts = unique.size - np.arange(lo, hi, dtype=np.int64)
    a = np.repeat(np.arange(lo, hi, dtype=np.int64), counts)
    b = a + np.arange(a.size, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    i, j = unique[a], unique[b]  # i <= j: the pairs of the user's items
    # Row i of the upper triangle starts at i*n - i*(i-1)/2 (row-major, as np.triu_indices).
    positions = i * n_items - (i * (i - 1)) // 2 + (j - i)
    values = np.where(i == j, 1.0, SQRT2) / max(unique.size, 1)
    return positions, values


def contribution(items: np.ndarray, n_items: int) -> np.ndarray:
    """A user's co-occurrence term as the vector it releases (float64, L2 norm 1).

    Repeated items count once; a user without items contributes zeros.
    """
    positions, values = contribution_entries(items, n_items)
    out = np.zeros(vector_size(n_items), dtype=np.float64)
    out[positions] = values
    return out


def gram_from_vector(vector: np.ndarray, n_items: int) -> np.ndarray:
    """The symmetric ``n x n`` matrix a released (summed, noised) vector stands for."""
    vector = np.asarray(vector, dtype=np.float64)
    if vector.shape != (vector_size(n_items),):
        raise ValueError(f"expected a vector of {vector_size(n_items)} entries, got {vector.shape}")
    rows, cols, scale = _upper(n_items)
    gram = np.zeros((n_items, n_items), dtype=np.float64)
    gram[rows, cols] = vector / scale
    gram[cols, rows] = gram[rows, cols]
    return gram


def vector_diagonal(vector: np.ndarray, n_items: int) -> np.ndarray:
    """The diagonal of the matrix a released vector stands for (each item's popularity).

    Each user puts ``1 / n_u`` on the diagonal entry of every item it holds, so the
    diagonal of the sum counts users, each user's items sharing one unit.
    """
    vector = np.asarray(vector, dtype=np.float64)
    if vector.shape != (vector_size(n_items),):
        raise ValueError(f"expected a vector of {vector_size(n_items)} entries, got {vector.shape}")
    i = np.arange(n_items)
    return vector[i * n_items - (i * (i - 1)) // 2]


def vector_row_sums(vector: np.ndarray, n_items: int) -> np.ndarray:
    """Row sums of the matrix a released vector stands for: each item's user count.

    A user's term ``x xᵀ / n`` has row sums ``x``, so the sum's rows count the users who
    hold each item, every user one each, as plain popularity does (the diagonal instead
    gives a heavy user's items less). Each row sum adds up ``n`` noisy entries.
    """
    return gram_from_vector(vector, n_items).sum(axis=1)  # type: ignore[no-any-return]


def ease_weights(gram: np.ndarray, l2: float) -> np.ndarray:
    """EASE's item-item matrix from a Gram matrix: ``B = I - P / diag(P)``, ``P = (G + λI)⁻¹``.

    A user's scores are its 0/1 item row times ``B`` (zero diagonal: an item never
    recommends itself). λ makes ``G + λI`` invertible and, on a noisy ``G``, damps the noise.
    """
    if l2 <= 0:
        raise ValueError(f"EASE's L2 penalty must be > 0 (it makes XᵀX invertible), got {l2}")
    g = np.array(gram, dtype=np.float64, copy=True)
    g[np.diag_indices_from(g)] += l2
    p = np.linalg.inv(g)
    weights = -p / np.diag(p)[None, :]
    np.fill_diagonal(weights, 0.0)
    return weights


def ease_factors(gram: np.ndarray, l2: float, dropout: float = 0.0) -> np.ndarray:
    """Full-rank item factors whose products rank as EASE with dropout emphasis does.

    The penalty is EDLAE's (Steck 2020): ``Λ = λI + p / (1 - p) diag(G)``, ``P = (G + Λ)⁻¹``.
    EASE scores item ``j`` by ``-(xᵀP)_j / P_jj``; this model uses the symmetric
    normalisation ``C = D^-1/2 P D^-1/2`` (``D = diag(P)``), so one table serves items and
    users alike: ``F Fᵀ = (μ_max I - C) / (μ_max - μ_min)`` with ``μ`` the eigenvalues of
    ``C``. The shift by ``μ_max I`` only raises the scores of a user's own items (which are
    never recommended), so a user who is the mean of its items' factors ranks the others by
    ``-Σ_i C_ij``. Scaled so the largest eigenvalue of ``F Fᵀ`` is 1, as the spectral
    factors are.
    """
    gram = np.asarray(gram, dtype=np.float64)
    if gram.ndim != 2 or gram.shape[0] != gram.shape[1]:
        raise ValueError(f"expected a square Gram matrix, got shape {gram.shape}")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    if l2 <= 0:
        raise ValueError(f"EASE's L2 penalty must be > 0, got {l2}")
    g = (gram + gram.T) / 2.0
    # A noisy diagonal can dip below zero; a negative penalty would undo the L2's damping.
    penalty = l2 + dropout / (1.0 - dropout) * np.maximum(np.diag(g), 0.0)
    g[np.diag_indices_from(g)] += penalty
    p = np.linalg.inv(g)
    root = 1.0 / np.sqrt(np.abs(np.diag(p)))
    c = p * root[:, None] * root[None, :]
    values, vectors = np.linalg.eigh((c + c.T) / 2.0)
    spread = float(values[-1] - values[0])
    if spread <= 0:
        return np.zeros_like(c, dtype=np.float32)
    factors = vectors * np.sqrt(np.maximum(values[-1] - values, 0.0) / spread)[None, :]
    signs = np.sign(factors.sum(axis=0))
    signs[signs == 0] = 1.0
    return (factors * signs[None, :]).astype(np.float32)


def spectral_factors(gram: np.ndarray, rank: int) -> np.ndarray:
    """Item factors ``V_r √Λ_r`` from the top ``rank`` eigenpairs of a (noisy) Gram matrix.

    A user who holds items ``x`` is the mean of its items' factors, so its scores are
    ``V_r Λ_r V_rᵀ x`` up to a positive factor: the Gram matrix's best rank-``r``
    approximation applied to the user's items (PureSVD's folding-in on ``XᵀX``). The
    truncation is what removes most of the noise: the noise spreads over all ``n``
    directions, the signal over a few. Negative eigenvalues (noise) count as zero.
    """
    gram = np.asarray(gram, dtype=np.float64)
    if gram.ndim != 2 or gram.shape[0] != gram.shape[1]:
        raise ValueError(f"expected a square Gram matrix, got shape {gram.shape}")
    if not 1 <= rank <= gram.shape[0]:
        raise ValueError(f"rank must be in [1, {gram.shape[0]}], got {rank}")
    values, vectors = np.linalg.eigh((gram + gram.T) / 2.0)
    top = np.argsort(values)[::-1][:rank]
    scale = np.sqrt(np.maximum(values[top], 0.0))
    factors = vectors[:, top] * scale[None, :]
    # eigh's signs are arbitrary: fix each column's so the result is deterministic.
    signs = np.sign(factors.sum(axis=0))
    signs[signs == 0] = 1.0
    return (factors * signs[None, :]).astype(np.float32)


def user_vector(factors: np.ndarray, items: np.ndarray, *, rank: int, fade: float) -> np.ndarray:
    """A user of a co-occurrence model: the mean factor of its items, content part faded.

    The first ``rank`` columns of ``factors`` are collaborative, the rest the items' text
    (content) part. The content part counts ``fade / (fade + n)`` for a user with ``n``
    items: it carries a new user with a few liked items, and gives way to the
    co-occurrence as the user's own history grows. ``fade = 0`` drops it.
    """
    items = np.asarray(items, dtype=np.int64)
    if items.size == 0:
        return np.zeros(factors.shape[1], dtype=np.float64)
    vec = np.asarray(factors[items], dtype=np.float64).mean(axis=0)
    if fade < 0:
        raise ValueError(f"fade must be >= 0, got {fade}")
    vec[rank:] *= fade / (fade + items.size)
    return vec
