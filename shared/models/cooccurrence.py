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


def contribution(items: np.ndarray, n_items: int) -> np.ndarray:
    """A user's co-occurrence term as the vector it releases (float64, L2 norm 1).

    Repeated items count once; a user without items contributes zeros.
    """
    unique = np.unique(np.asarray(items, dtype=np.int64))
    if unique.size and (unique[0] < 0 or unique[-1] >= n_items):
        raise ValueError(f"item indices must be in [0, {n_items}), got {unique[[0, -1]]}")
    out = np.zeros(vector_size(n_items), dtype=np.float64)
    if unique.size == 0:
        return out
    x = np.zeros(n_items, dtype=np.float64)
    x[unique] = 1.0
    rows, cols, scale = _upper(n_items)
    hit = np.flatnonzero(x[rows] * x[cols])
    out[hit] = scale[hit] / unique.size
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
