"""EASE (Steck 2019, "Embarrassingly Shallow Autoencoders for Sparse Data").

A linear item-item model ``B`` with a zero diagonal that best reconstructs the binary
interaction matrix ``X`` under an L2 penalty ``λ``:

    B = argmin ||X - X B||² + λ ||B||²  subject to  diag(B) = 0,

whose closed form is ``P = (XᵀX + λI)⁻¹``, ``B_ij = -P_ij / P_jj`` (``i != j``). A user's
scores are their training row times ``B``. Its only statistic, the Gram matrix ``XᵀX``, is
a sum over users, which is what makes it interesting for a federation.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import scipy.sparse as sp

from fedrec.shared.baselines.base import Recommender, check_dense_items, interaction_matrix
from fedrec.shared.data.dataset import Split
from fedrec.shared.models.cooccurrence import ease_weights

logger = logging.getLogger(__name__)


class EASE(Recommender):
    """EASE with penalty ``l2`` (λ), fitted on the training interactions."""

    name = "ease"

    def __init__(self, *, l2: float = 500.0) -> None:
        super().__init__()
        if l2 <= 0:
            raise ValueError(f"l2 must be > 0, got {l2}")
        self.l2 = float(l2)
        self._x = sp.csr_matrix((0, 0))
        self._weights = np.zeros((0, 0))

    def params(self) -> dict[str, Any]:
        """``l2``: the penalty λ."""
        return {"l2": self.l2}

    def _fit(self, split: Split) -> None:
        check_dense_items(split.n_items, "EASE")
        self._x = interaction_matrix(split, np.float64)
        gram = (self._x.T @ self._x).toarray()
        self._weights = ease_weights(gram, self.l2)

    def _score(self, users: np.ndarray) -> np.ndarray:
        return np.asarray(self._x[users] @ self._weights)
