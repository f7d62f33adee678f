"""The centralized baselines of the quality benchmark: tuned on validation, reported on test.

Every baseline is fitted on the split's training interactions. Those with hyperparameters
are tuned by grid search on the validation items (:func:`fedrec.shared.baselines.tune`);
the chosen model is then evaluated once on the test items, with both protocols, coverage,
genre diversity and novelty. The grids are small enough for a few minutes on 2 CPU cores
on ML-100K; each grid and the values chosen from it go into the result.

DP popularity is released afresh ``draws`` times per ε (each draw is its own release at
that ε; a deployment would publish one), and the mean over draws is what the tables show.

The reference every ratio is taken to is the highest test NDCG@10 (full ranking) among the
non-private centralized baselines: the strictest of them, whichever it is on the data.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

import numpy as np

from fedrec.shared.baselines import (
    EASE,
    IALS,
    CentralMF,
    DPPopularity,
    ItemKNN,
    Popularity,
    Recommender,
    tune,
)
from fedrec.shared.data.dataset import Split
from fedrec.shared.evaluation import evaluate_model
from fedrec.simulations.measure import measure
from fedrec.simulations.result_keys import NDCG, K

logger = logging.getLogger(__name__)


# Validation grids. Kept to a few minutes on 2 cores; widen one when its chosen value lies
# on the grid's edge in a report.
GRIDS: dict[str, dict[str, tuple[Any, ...]]] = {
    "item-knn": {"neighbours": (100, 200, 400, 800, 1600), "shrinkage": (0.0, 10.0, 50.0)},
    "ease": {"l2": (30.0, 100.0, 200.0, 300.0, 500.0, 1000.0, 2000.0)},
    "ials": {
        "factors": (32, 64, 128),
        "regularization": (3.0, 10.0, 30.0),
        "alpha": (0.5, 1.0, 2.0),
        "iterations": (5, 10, 15, 30),
    },
    "mf": {
        "dim": (64, 128, 256),
        "learning_rate": (0.002, 0.005, 0.01),
        "weight_decay": (0.0, 1e-5, 3e-5),
    },
}
DP_EPSILONS = (1.0, 4.0, 8.0)
MF_EPOCHS = 40  # the tuned MF's epoch cap (it stops early on validation)
REFERENCE_RULE = (
    "the highest test NDCG@10 (full ranking) among the non-private centralized baselines"
)


def builders(*, seed: int, mf_epochs: int) -> dict[str, Callable[..., Recommender]]:
    """Each tuned baseline's constructor, with what is fixed rather than tuned bound."""
    return {
        "item-knn": ItemKNN,
        "ease": EASE,
        "ials": lambda **p: IALS(**p, seed=seed),
        "mf": lambda **p: CentralMF(**p, epochs=mf_epochs, seed=seed),
    }


def check_grids(grids: Mapping[str, Mapping[str, Sequence[Any]]]) -> None:
    """Refuse a grid for a baseline the benchmark does not know."""
    unknown = set(grids) - set(GRIDS)
    if unknown:
        raise ValueError(f"no baseline named {sorted(unknown)}; grids exist for {list(GRIDS)}")


def _test_metrics(
    model: Recommender, split: Split, genres: Sequence[Sequence[str]], seed: int
) -> dict[str, float]:
    return evaluate_model(model.score, split, k=K, seed=seed, genres=genres)


def run_baselines(
    split: Split,
    *,
    genres: Sequence[Sequence[str]],
    seed: int,
    dp_epsilons: Sequence[float] = DP_EPSILONS,
    dp_draws: int = 3,
    accountant: str = "rdp",
    mf_epochs: int = MF_EPOCHS,
    grids: Mapping[str, Mapping[str, Sequence[Any]]] | None = None,
) -> dict[str, Any]:
    """Fit, tune and evaluate every baseline; the result's ``baselines`` and ``dp_popularity``.

    Args:
        split: the benchmark's split (every baseline fits on ``split.train``).
        genres: the catalogue's genres, for the diversity metric.
        seed: the split's seed (sampled negatives, model initialisation).
        dp_epsilons: user-level ε of the DP popularity releases.
        dp_draws: fresh releases per ε.
        accountant: the user-level accountant of the DP releases (``rdp`` | ``prv``).
        mf_epochs: the tuned MF's epoch cap (it stops early on validation).
        grids: replaces :data:`GRIDS` per baseline (for tests and quick runs).
    """
    if dp_draws < 1:
        raise ValueError(f"dp_draws must be >= 1, got {dp_draws}")
    grids = {**GRIDS, **(grids or {})}
    check_grids(grids)
    build = builders(seed=seed, mf_epochs=mf_epochs)
    baselines: dict[str, dict[str, Any]] = {}

    def popularity() -> dict[str, Any]:
        model = Popularity().fit(split)
        return {"metrics": _test_metrics(model, split, genres, seed), "tuning": None}

    baselines["popularity"] = measure("popularity", popularity)

    for key, grid in grids.items():

        def tuned(key: str = key, grid: Mapping[str, Sequence[Any]] = grid) -> dict[str, Any]:
            result = tune(build[key], grid, split, k=K, seed=seed)
            chosen = next(t for t in result.trials if t.params == result.chosen)
            return {
                "metrics": _test_metrics(result.model, split, genres, seed),
                "valid": chosen.valid,
                "tuning": result.to_dict(),
            }

        baselines[key] = measure(key, tuned)

    dp = [
        measure(
            f"dp-popularity eps {eps:g}",
            partial(_dp_popularity, split, eps, dp_draws, accountant, genres, seed),
        )
        for eps in dp_epsilons
    ]
    return {"baselines": baselines, "dp_popularity": dp}


def _dp_popularity(
    split: Split,
    epsilon: float,
    draws: int,
    accountant: str,
    genres: Sequence[Sequence[str]],
    seed: int,
) -> dict[str, Any]:
    runs = []
    release: dict[str, Any] = {}
    for _ in range(draws):
        model = DPPopularity(epsilon=epsilon, accountant=accountant).fit(split)
        release = model.fitted()
        runs.append(_test_metrics(model, split, genres, seed))
    ndcg = np.array([r[NDCG] for r in runs])
    return {
        "epsilon": float(epsilon),
        "release": release,  # σ, ε and δ are the same for every draw; the noise is not
        "draws": runs,
        "metrics": {key: float(np.mean([r[key] for r in runs])) for key in runs[0]},
        f"{NDCG}_std": float(ndcg.std(ddof=1)) if ndcg.size > 1 else 0.0,
    }


def reference_of(baselines: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The best non-private centralized baseline by test NDCG@10 (full ranking)."""
    if not baselines:
        raise ValueError("no baselines to take a reference from")
    best = max(baselines, key=lambda key: baselines[key]["metrics"][NDCG])
    return {"baseline": best, NDCG: baselines[best]["metrics"][NDCG], "rule": REFERENCE_RULE}


def add_ratios(result: dict[str, Any]) -> None:
    """Put ``over_reference_ndcg@10_full`` on every baseline, DP release and arm."""
    reference = result["reference"][NDCG]
    entries = [
        *result["baselines"].values(),
        *result["dp_popularity"],
        *result.get("arms", {}).values(),
    ]
    for entry in entries:
        entry[f"over_reference_{NDCG}"] = entry["metrics"][NDCG] / reference if reference else None
