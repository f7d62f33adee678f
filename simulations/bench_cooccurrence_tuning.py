"""``fedrec bench cooccurrence --tune``: choose rank, content weight and fade on held-out items.

The co-occurrence model's three post-processing knobs (``cooccurrence-rank``,
``cooccurrence-content-weight``, ``cooccurrence-content-fade``) are fixed defaults. This
benchmark is how they are chosen, at the goal's ε, over several fresh noise draws, on a
grid written down before any result was seen, and never on a test item (the test item is
excluded from every ranking). One held-out item per user is a noisy signal to choose by,
so each candidate is scored on three per user (:data:`TARGETS`): the validation item (the
second-to-last interaction, the release built from the training items), and the last and
second-to-last *training* items (a leave-last-out split of the training items alone, its
own release built from what is left). ``fedrec bench cooccurrence`` then verifies the
chosen defaults on test with fresh releases through the product's path.

Every grid point is post-processing of the same release, so one draw serves them all. A
draw is the exact sum plus Gaussian noise with the std that the placement's shares add up
to (:func:`fedrec.simulations.bench_cooccurrence.noise_on_sum`): the release's
distribution, less SecAgg+'s quantization, at a fraction of the cost of simulating every
client's share.

What this choice costs: it reads the users' held-out items, which the privacy accounting
does not cover (docs/privacy.md, "What is not accounted"); a deployment that re-tunes on
its own users must account for it. It scores warm users only: the shipped defaults are not
its choice, since the service's answers to new users use the same factors
(:data:`fedrec.simulations.bench_cooccurrence.DEFAULTS_NOTE`).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from fedrec.server.cooccurrence import collaborative_factors, item_tensors
from fedrec.shared.baselines import Popularity
from fedrec.shared.config import FedRecConfig, resolve_config
from fedrec.shared.data import leave_last_out, load_split
from fedrec.shared.data.dataset import Split
from fedrec.shared.evaluation import evaluate_model
from fedrec.shared.privacy import SecureRandom
from fedrec.shared.privacy.cooccurrence import plan_release
from fedrec.simulation.cooccurrence import released_sum, scores_of
from fedrec.simulations.bench_cooccurrence import GOAL_EPSILON, deployable, noise_on_sum
from fedrec.simulations.measure import machine_stamp
from fedrec.simulations.report import save, timestamp
from fedrec.simulations.result_keys import NDCG, mean_interval

logger = logging.getLogger(__name__)

# Fixed before any result was seen, with the defaults shipped until then (rank 128, weight
# 0.1, fade 2) inside it; widened twice past the ends earlier runs chose (fade past 32, then
# every axis), never narrowed.
GRID: dict[str, tuple[float, ...]] = {
    "cooccurrence-rank": (32, 64, 128, 256, 512),
    "cooccurrence-content-weight": (0.01, 0.03, 0.1, 0.3, 1.0),
    "cooccurrence-content-fade": (0.5, 2.0, 8.0, 32.0, 128.0, 512.0, 1000.0),
}
KEYS = tuple(GRID)
# What a candidate is scored on, averaged: (split, its held-out item). "outer" is the data
# set's split (its validation item); "inner" is a leave-last-out split of its training items.
TARGETS: tuple[tuple[str, Literal["test", "valid"]], ...] = (
    ("outer", "valid"),
    ("inner", "test"),
    ("inner", "valid"),
)


def _candidates(grid: dict[str, tuple[float, ...]]) -> list[dict[str, float]]:
    return [dict(zip(KEYS, values, strict=True)) for values in itertools.product(*grid.values())]


def inner_split(split: Split, seed: int) -> Split:
    """A leave-last-out split of ``split``'s training items alone (no held-out item in it)."""
    return leave_last_out(split.train, n_users=split.n_users, n_items=split.n_items, seed=seed)


def _target_ndcg(
    cfg: FedRecConfig,
    released: np.ndarray,
    emb: np.ndarray,
    split: Split,
    target: Literal["test", "valid"],
    candidates: Sequence[dict[str, float]],
) -> list[float]:
    """NDCG@10 of every candidate on ``target`` of one release (factors built once per rank)."""
    out: list[float] = []
    factors: dict[float, np.ndarray] = {}
    for cand in candidates:
        point = cfg.replace(**cand)
        rank = cand["cooccurrence-rank"]
        if rank not in factors:
            factors[rank] = collaborative_factors(released, split.n_items, point.cooccurrence)
        tensors = item_tensors(
            factors[rank],
            item_embeddings=emb,
            content_weight=point.cooccurrence.cooccurrence_content_weight,
        )
        score = scores_of(tensors, split, point.cooccurrence)
        out.append(evaluate_model(score, split, k=10, target=target, seed=cfg.data.seed)[NDCG])
    return out


def run_tuning_bench(
    *,
    overrides: dict[str, Any] | None,
    output_dir: Path,
    name: str = "cooccurrence-tuning",
    epsilon: float = GOAL_EPSILON,
    draws: int = 5,
    placement: str = "secagg",
    grid: dict[str, tuple[float, ...]] = GRID,
) -> dict[str, Any]:
    """Every candidate's held-out NDCG@10 (:data:`TARGETS`) over ``draws`` releases."""
    from fedrec.shared.models.text_cache import default_cache_dir, text_embeddings

    if draws < 1:
        raise ValueError(f"draws must be >= 1, got {draws}")
    cfg = resolve_config({}, {**deployable(placement), **(overrides or {})})
    dataset, split = load_split(cfg.data)
    cache = Path(cfg.text.text_cache_dir or default_cache_dir())
    emb = text_embeddings(dataset.items.texts, cache, max_length=cfg.text.text_max_length)
    splits = {"outer": split, "inner": inner_split(split, cfg.data.seed)}
    pop_heldout = float(
        np.mean(
            [
                evaluate_model(
                    Popularity().fit(splits[which]).score,
                    splits[which],
                    k=10,
                    target=target,
                    seed=cfg.data.seed,
                )[NDCG]
                for which, target in TARGETS
            ]
        )
    )
    off = cfg.replace(**{"user-dp": "off"})
    exact = {
        which: released_sum(off, part, plan_release(off.privacy, off.cooccurrence, part.n_users))
        for which, part in splits.items()
    }
    std = noise_on_sum(cfg, split.n_users, epsilon, placement)
    candidates = _candidates(grid)
    runs = np.zeros((draws, len(candidates)))
    for draw in range(draws):
        per_target = []
        for which, target in TARGETS:
            released = exact[which] + SecureRandom().normal(exact[which].shape, std)
            per_target.append(_target_ndcg(cfg, released, emb, splits[which], target, candidates))
        runs[draw] = np.mean(per_target, axis=0)
        logger.info(
            "draw %d/%d: best held-out NDCG@10 %.4f", draw + 1, draws, float(runs[draw].max())
        )
    rows = [
        {**cand, "heldout_runs": runs[:, i].tolist(), "heldout": mean_interval(runs[:, i].tolist())}
        for i, cand in enumerate(candidates)
    ]
    chosen = max(rows, key=lambda row: row["heldout"]["mean"])
    shipped = {key: cfg.to_run_config()[key] for key in KEYS}
    result = {
        "benchmark": name,
        "date": timestamp(),
        "dataset": cfg.data.dataset,
        "users": split.n_users,
        "items": split.n_items,
        "targets": [f"{which} {target}" for which, target in TARGETS],
        "epsilon": epsilon,
        "placement": placement,
        "noise_std_on_sum": std,
        "draws": draws,
        "settings": cfg.to_run_config(),
        "grid": {k: list(v) for k, v in grid.items()},
        "popularity_heldout": pop_heldout,
        "rows": rows,
        "chosen": {k: chosen[k] for k in KEYS},
        "shipped": shipped,
        "machine": machine_stamp(),
    }
    save(result, output_dir, name, kind="cooccurrence-tuning")
    return result
