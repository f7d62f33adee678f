"""Random scores: the chance level every metric is read against."""

from __future__ import annotations

import numpy as np

from fedrec.shared.evaluation import ScoreFn

# Mixed into the random baseline's seed so its scores are independent of the sampled
# negatives, which are drawn with ``default_rng([seed, user])``.
_RANDOM_STREAM = 0x5EED_0B5E


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
