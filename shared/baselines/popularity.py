"""Popularity: every user gets the items most often trained on.

A learned model that does not beat popularity on full-ranking metrics has learned nothing
useful.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from fedrec.shared.baselines.base import Recommender
from fedrec.shared.data.dataset import Split
from fedrec.shared.evaluation import ScoreFn

logger = logging.getLogger(__name__)


def popularity_scores(split: Split) -> np.ndarray:
    """Training interaction count of every item, ``[n_items]`` float64."""
    return np.bincount(split.train.items, minlength=split.n_items).astype(np.float64)


def popularity_score_fn(split: Split) -> ScoreFn:
    """Score function giving every user the training popularity of each item.

    The returned matrices are read-only views of one ``[n_items]`` vector.
    """
    scores = popularity_scores(split)
    scores.setflags(write=False)

    def score(users: np.ndarray) -> np.ndarray:
        return np.broadcast_to(scores, (np.asarray(users).shape[0], scores.shape[0]))

    return score


class Popularity(Recommender):
    """:func:`popularity_scores` as a :class:`~fedrec.shared.baselines.base.Recommender`."""

    name = "popularity"

    def __init__(self) -> None:
        super().__init__()
        self._scores = np.zeros(0)

    def params(self) -> dict[str, Any]:
        """No hyperparameters."""
        return {}

    def _fit(self, split: Split) -> None:
        self._scores = popularity_scores(split)
        self._scores.setflags(write=False)

    def _score(self, users: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self._scores, (users.shape[0], self._scores.shape[0]))
