"""The common shape of every centralized baseline: fit on a split, then score users.

In the spirit of benfred/implicit's ``RecommenderBase``: :meth:`Recommender.fit` learns from
the split's *training* interactions only (never its validation or test items), and
:meth:`Recommender.score` returns dense ``[batch, n_items]`` scores, so a fitted model is a
score function for :func:`fedrec.shared.evaluation.evaluate_model`. Filtering a user's own
training items is the evaluator's job, as it is for every other model in the project.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from typing import Any, Self

import numpy as np
import scipy.sparse as sp

from fedrec.shared.data.dataset import Split
from fedrec.shared.errors import NotFittedError

logger = logging.getLogger(__name__)

# Item-item models hold dense ``n_items x n_items`` matrices; past this size they would
# need gigabytes and a sparse implementation instead.
MAX_DENSE_ITEMS = 20_000


class Recommender(ABC):
    """A centralized recommender: ``fit(split)``, then ``score(users)``.

    Subclasses take their hyperparameters as keyword-only constructor arguments and report
    them in :meth:`params`; whatever :meth:`fit` itself decides (an early-stopping epoch,
    a noise scale) goes in :meth:`fitted`.
    """

    name: str = "recommender"

    def __init__(self) -> None:
        self._n_items: int | None = None

    @abstractmethod
    def params(self) -> dict[str, Any]:
        """The hyperparameters this instance was built with (JSON-ready)."""

    def fitted(self) -> dict[str, Any]:
        """What :meth:`fit` chose or measured beyond :meth:`params` (JSON-ready)."""
        return {}

    def fit(self, split: Split) -> Self:
        """Learn from ``split.train``; returns ``self`` so calls chain."""
        self._fit(split)
        self._n_items = split.n_items
        return self

    @abstractmethod
    def _fit(self, split: Split) -> None: ...

    def score(self, users: np.ndarray) -> np.ndarray:
        """Scores ``[len(users), n_items]`` (float, higher is better) of every item."""
        if self._n_items is None:
            raise NotFittedError(f"{self.name}: call fit(split) before score(users)")
        batch = np.asarray(users, dtype=np.int64)
        scores = self._score(batch)
        if scores.shape != (batch.shape[0], self._n_items):
            raise AssertionError(f"{self.name} returned scores of shape {scores.shape}")
        return scores

    @abstractmethod
    def _score(self, users: np.ndarray) -> np.ndarray: ...


def interaction_matrix(split: Split, dtype: type = np.float32) -> sp.csr_matrix:
    """The binary ``[n_users, n_items]`` matrix of training interactions (repeats count once)."""
    matrix = sp.csr_matrix(
        (np.ones(len(split.train), dtype=dtype), (split.train.users, split.train.items)),
        shape=(split.n_users, split.n_items),
    )
    matrix.sum_duplicates()
    matrix.data[:] = 1
    return matrix


def check_dense_items(n_items: int, model: str) -> None:
    """Refuse a catalogue too large for a dense item-item matrix, saying why."""
    if n_items > MAX_DENSE_ITEMS:
        gib = n_items**2 * 8 / 2**30
        raise ValueError(
            f"{model} keeps a dense {n_items} x {n_items} item matrix (~{gib:.0f} GiB); "
            f"it supports catalogues of up to {MAX_DENSE_ITEMS} items"
        )
