"""Item-kNN: cosine similarity over item co-occurrence, pruned to each item's neighbours.

``sim(i, j) = |U_i ∩ U_j| / (sqrt(|U_i| |U_j|) + shrinkage)`` where ``U_i`` is the set of
users who trained on ``i``; the shrinkage pulls similarities resting on few co-occurrences
towards zero. For each candidate item ``j`` only its ``neighbours`` most similar items are
kept, and a user's score for ``j`` is the sum of ``sim(i, j)`` over the items ``i`` they
trained on (Sarwar et al. 2001; Deshpande & Karypis 2004).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import scipy.sparse as sp

from fedrec.shared.baselines.base import Recommender, check_dense_items, interaction_matrix
from fedrec.shared.data.dataset import Split

logger = logging.getLogger(__name__)


def cosine_similarity(x: sp.csr_matrix, shrinkage: float = 0.0) -> np.ndarray:
    """Dense item-item cosine of the columns of a binary ``[users, items]`` matrix.

    The diagonal is zero (an item is not its own neighbour); items nobody trained on have
    zero similarity to everything.
    """
    if shrinkage < 0:
        raise ValueError(f"shrinkage must be >= 0, got {shrinkage}")
    co = (x.T @ x).toarray().astype(np.float64)
    norms = np.sqrt(np.diag(co))
    denominator = np.outer(norms, norms) + shrinkage
    sim = np.divide(co, denominator, out=np.zeros_like(co), where=denominator > 0)
    np.fill_diagonal(sim, 0.0)
    return sim


def keep_neighbours(sim: np.ndarray, neighbours: int) -> np.ndarray:
    """``sim`` with all but the ``neighbours`` largest entries of each column set to zero."""
    if neighbours < 1:
        raise ValueError(f"neighbours must be >= 1, got {neighbours}")
    n = sim.shape[0]
    if neighbours >= n:
        return sim
    pruned = np.array(sim, copy=True)
    dropped = np.argpartition(-pruned, neighbours - 1, axis=0)[neighbours:]
    np.put_along_axis(pruned, dropped, 0.0, axis=0)
    return pruned


class ItemKNN(Recommender):
    """Cosine item-kNN with ``neighbours`` per item and ``shrinkage``."""

    name = "item-knn"

    def __init__(self, *, neighbours: int = 100, shrinkage: float = 0.0) -> None:
        super().__init__()
        if neighbours < 1:
            raise ValueError(f"neighbours must be >= 1, got {neighbours}")
        if shrinkage < 0:
            raise ValueError(f"shrinkage must be >= 0, got {shrinkage}")
        self.neighbours = int(neighbours)
        self.shrinkage = float(shrinkage)
        self._x = sp.csr_matrix((0, 0))
        self._sim = np.zeros((0, 0))

    def params(self) -> dict[str, Any]:
        """``neighbours`` kept per item and the similarity ``shrinkage``."""
        return {"neighbours": self.neighbours, "shrinkage": self.shrinkage}

    def _fit(self, split: Split) -> None:
        check_dense_items(split.n_items, "item-kNN")
        self._x = interaction_matrix(split, np.float64)
        self._sim = keep_neighbours(cosine_similarity(self._x, self.shrinkage), self.neighbours)

    def _score(self, users: np.ndarray) -> np.ndarray:
        return np.asarray(self._x[users] @ self._sim)
