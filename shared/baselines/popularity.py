"""Reference models every result is compared against: popularity and random.

Both return a score function for :func:`fedrec.shared.evaluation.evaluate_model`. A learned
model that does not beat popularity on full-ranking metrics has learned nothing useful.
"""

from __future__ import annotations

import logging

import numpy as np

from fedrec.shared.data.dataset import Split
from fedrec.shared.evaluation import ScoreFn

logger = logging.getLogger(__name__)

# Mixed into the random baseline's seed so its scores are independent of the sampled
# negatives, which are drawn with ``default_rng([seed, user])``.
_RANDOM_STREAM = 0x5EED_0B5E


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


def random_score_fn(n_items: int, seed: int) -> ScoreFn:
    """Score function drawing uniform scores, fixed per ``(seed, user)``.

    A user's scores do not depend on the batch they are scored in, so results are the same
    for any ``batch_size``.
    """
    if n_items < 1:
        raise ValueError(f"n_items must be >= 1, got {n_items}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")

    def score(users: np.ndarray) -> np.ndarray:
        batch = np.asarray(users, dtype=np.int64)
        out = np.empty((batch.shape[0], n_items), dtype=np.float64)
        for row, user in enumerate(batch):
            rng = np.random.default_rng([seed, _RANDOM_STREAM, int(user)])
            out[row] = rng.random(n_items)
        return out

    return score
