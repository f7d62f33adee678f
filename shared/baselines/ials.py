"""iALS (Hu, Koren & Volinsky 2008): implicit-feedback MF by alternating least squares.

The implementation is the ``implicit`` package's CPU solver (conjugate gradient), run on the
binary training matrix: the package weights an observed interaction by confidence ``alpha``
times its value (here 1) and every unobserved one by 1. A user's scores are their factor
times every item factor.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import threadpoolctl

from fedrec.shared.baselines.base import Recommender, interaction_matrix
from fedrec.shared.data.dataset import Split

logger = logging.getLogger(__name__)


class IALS(Recommender):
    """``implicit``'s AlternatingLeastSquares on CPU, seeded, with BLAS kept single-threaded."""

    name = "ials"

    def __init__(
        self,
        *,
        factors: int = 64,
        regularization: float = 10.0,
        alpha: float = 1.0,
        iterations: int = 15,
        seed: int = 42,
        num_threads: int = 0,
    ) -> None:
        super().__init__()
        if factors < 1 or iterations < 1:
            raise ValueError(f"factors and iterations must be >= 1, got {factors}, {iterations}")
        if regularization < 0 or alpha <= 0:
            raise ValueError(
                f"regularization must be >= 0 and alpha > 0, got {regularization}, {alpha}"
            )
        self.factors = int(factors)
        self.regularization = float(regularization)
        self.alpha = float(alpha)
        self.iterations = int(iterations)
        self.seed = int(seed)
        self.num_threads = int(num_threads)
        self._users = np.zeros((0, 0), dtype=np.float32)
        self._items = np.zeros((0, 0), dtype=np.float32)

    def params(self) -> dict[str, Any]:
        """Factors, L2 regularization, confidence weight alpha, ALS iterations."""
        return {
            "factors": self.factors,
            "regularization": self.regularization,
            "alpha": self.alpha,
            "iterations": self.iterations,
        }

    def _fit(self, split: Split) -> None:
        from implicit.cpu.als import AlternatingLeastSquares

        # implicit parallelises over users itself; a multi-threaded BLAS underneath it
        # oversubscribes the cores (its own warning says so), so BLAS gets one thread here.
        with threadpoolctl.threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(
                factors=self.factors,
                regularization=self.regularization,
                alpha=self.alpha,
                iterations=self.iterations,
                random_state=self.seed,
                num_threads=self.num_threads,
            )
            model.fit(interaction_matrix(split, np.float32), show_progress=False)
        self._users = np.asarray(model.user_factors, dtype=np.float32)
        self._items = np.asarray(model.item_factors, dtype=np.float32)

    def _score(self, users: np.ndarray) -> np.ndarray:
        return self._users[users] @ self._items.T
