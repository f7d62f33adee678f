"""Grid search on validation: fit every grid point on train, keep the best validation score.

Every candidate is fitted on the split's training interactions and scored with
:func:`~fedrec.shared.evaluation.evaluate_model` ``(target="valid")`` only: the validation
item ranked against the catalogue minus the user's training items. (That protocol also
drops the user's test item from the candidates, so that a future interaction never counts
as a wrong answer; it never scores it.) The test item is for the final report alone.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fedrec.shared.baselines.base import Recommender
from fedrec.shared.data.dataset import Split
from fedrec.shared.evaluation import evaluate_model

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Trial:
    """One grid point: its hyperparameters, validation metrics and fitting time."""

    params: dict[str, Any]
    valid: dict[str, float]
    fitted: dict[str, Any]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "params": self.params,
            "valid": self.valid,
            "fitted": self.fitted,
            "seconds": self.seconds,
        }


@dataclass
class Tuned:
    """The model fitted at the chosen grid point, and every trial that led to it."""

    model: Recommender
    grid: dict[str, list[Any]]
    metric: str
    chosen: dict[str, Any]
    trials: list[Trial] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Grid, selection metric, chosen values, what the chosen fit decided, every trial."""
        return {
            "grid": self.grid,
            "metric": f"valid/{self.metric}",
            "chosen": self.chosen,
            "fitted": self.model.fitted(),
            "trials": [t.to_dict() for t in self.trials],
        }


def grid_points(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, the last key varying fastest."""
    if any(len(values) == 0 for values in grid.values()):
        raise ValueError(f"every grid axis needs at least one value, got {dict(grid)}")
    keys = list(grid)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*grid.values())]


def tune(
    build: Callable[..., Recommender],
    grid: Mapping[str, Sequence[Any]],
    split: Split,
    *,
    k: int = 10,
    seed: int = 42,
    metric: str | None = None,
) -> Tuned:
    """Fit ``build(**point)`` for every grid point; keep the best on validation.

    Args:
        build: makes an unfitted model from one grid point's keyword arguments.
        grid: axis name -> values to try.
        split: fitted on ``split.train``, scored on ``split.valid_items``.
        k: list length of the metrics.
        seed: seed of the sampled negatives (:func:`evaluate_model`).
        metric: the validation metric to maximise, default ``ndcg@{k}_full``. The first
            grid point wins ties.

    Returns:
        The chosen point's fitted model and every trial.
    """
    if not (np.asarray(split.valid_items) >= 0).any():
        raise ValueError("the split has no validation items to tune on")
    metric = metric or f"ndcg@{k}_full"
    points = grid_points(grid)
    best: tuple[float, Recommender, dict[str, Any]] | None = None
    trials: list[Trial] = []
    for index, params in enumerate(points, start=1):
        started = time.perf_counter()
        model = build(**params).fit(split)
        valid = evaluate_model(model.score, split, k=k, target="valid", seed=seed)
        trials.append(Trial(params, valid, model.fitted(), time.perf_counter() - started))
        value = valid[metric]
        logger.info(
            "%s %d/%d %s: valid %s %.4f", model.name, index, len(points), params, metric, value
        )
        if math.isnan(value):
            continue
        if best is None or value > best[0]:
            best = (value, model, params)
    if best is None:
        raise ValueError(f"every grid point gave NaN validation {metric}")
    return Tuned(
        model=best[1],
        grid={key: list(values) for key, values in grid.items()},
        metric=metric,
        chosen=dict(best[2]),
        trials=trials,
    )
