"""``fedrec bench cooccurrence``: the private co-occurrence model across ε, fresh draws.

Compared with popularity, DP popularity and the best centralized baseline.

Every point is a fresh release through the product's path (each client's share, the
SecAgg+ sum by its arithmetic, the server's model: :mod:`fedrec.simulation.cooccurrence`).
One release serves two arms, since they differ only in post-processing: the collaborative
factors alone, and with the public-text content part (the served default). Each arm is
evaluated on the test split (full ranking and 99 sampled negatives) as users would rank on
their devices, and for a fixed set of new-user profiles by the genre share of the top 10
that a device ranks from the user vector of the three liked items (the relevance a person
checks by eye; the service answers new users by item-kNN on the same factors instead:
``fedrec bench cold-start --liked`` measures that path).

The centralized baselines (EASE, iALS, item-kNN, tuned MF: tuned on validation) are read
from ``baselines.json`` (``fedrec bench quality --baselines-only``) after checking that it
was measured on the same data and split; popularity and DP popularity at each ε are
computed here, on the same split.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from fedrec.server.cooccurrence import collaborative_factors, item_tensors
from fedrec.server.secagg import noise_survivors
from fedrec.shared.baselines import DPPopularity, Popularity
from fedrec.shared.config import FedRecConfig, resolve_config
from fedrec.shared.data import load_split
from fedrec.shared.data.dataset import Dataset, Split
from fedrec.shared.errors import ConfigError
from fedrec.shared.evaluation import evaluate_model, user_ndcgs
from fedrec.shared.evaluation.relevance import PROFILES, profile_relevance, top_ten
from fedrec.shared.evaluation.stats import paired_difference
from fedrec.shared.models.cooccurrence import user_vector, vector_size
from fedrec.shared.privacy import SecureRandom
from fedrec.shared.privacy.cooccurrence import plan_release
from fedrec.simulation.cooccurrence import DEPLOYABLE_SECAGG, released_sum, scores_of
from fedrec.simulations.bench_baselines import MF_EPOCHS, builders
from fedrec.simulations.measure import machine_stamp, measure
from fedrec.simulations.report import save
from fedrec.simulations.result_keys import NDCG, mean_interval

logger = logging.getLogger(__name__)

EPSILONS = (1.0, 2.0, 4.0, 8.0)
GOAL_EPSILON = 4.0
GOAL_RATIO = 1.25  # NDCG@10 over popularity at user-level ε <= 4 (issue 17)
GOAL_LOWER = 1.15  # the 95% interval's lower end must be above this
ARMS = ("collaborative", "with-text")
# Where the rank, content weight and fade defaults were chosen (docs/privacy.md, "What is not
# accounted"): reports say so, since their test figures are optimistic on that data set.
DEFAULTS_CHOSEN_ON = "ml-100k"
# The report of ``--tune`` that chose (or would choose) rank, content weight and fade.
TUNING_STEM = "cooccurrence-tuning"
# Why the shipped defaults are not the held-out choice of ``--tune`` (reports quote it).
DEFAULTS_NOTE = (
    "the service answers new users from liked items by the same item factors. With the "
    "held-out choice (cooccurrence-tuned.md on test) those answers found more of the users' "
    "later items but no longer read right: for no weight did the fixed liked-item profiles' "
    "top 10 stay in their genres (coldstart-tuned-liked.md, against coldstart-liked.md), so "
    "the defaults stay until a tuning scores the cold-start paths too."
)


def deployable(placement: str) -> dict[str, float]:
    """The settings under the user's overrides: the deployable share graph under secagg."""
    return dict(DEPLOYABLE_SECAGG) if placement == "secagg" else {}


# Without DP the exact sum is released, so its EASE item model can be tuned on validation at
# no privacy cost: the grid, fixed before any result was seen.
EASE_GRID: dict[str, tuple[float, ...]] = {
    "cooccurrence-l2": (0.3, 1.0, 3.0),
    "cooccurrence-dropout": (0.0, 0.2, 0.33, 0.5, 0.67),
}


def _baselines(path: Path, cfg: FedRecConfig) -> dict[str, Any]:
    """The centralized baselines of ``path``, refused unless measured on this split."""
    if not path.exists():
        raise ConfigError(f"{path} not found: run `fedrec bench quality --baselines-only` first")
    saved = json.loads(path.read_text())
    settings = saved.get("settings", {})
    for key in ("dataset", "data-path", "seed", "implicit-threshold"):
        ours = cfg.to_run_config()[key]
        if settings.get(key) != ours:
            raise ConfigError(
                f"{path} was measured with {key} = {settings.get(key)!r}, this run has "
                f"{ours!r}: re-run `fedrec bench quality --baselines-only` on this data"
            )
    baselines = {
        name: entry["metrics"] for name, entry in saved["baselines"].items() if name != "popularity"
    }
    best = max(baselines, key=lambda n: baselines[n][NDCG])
    return {
        "source": str(path),
        "date": saved.get("date"),
        "metrics": baselines,
        "best": best,
        "best_ndcg": baselines[best][NDCG],
    }


def _relevance(
    tensors: dict[str, np.ndarray], dataset: Dataset, rank: int, fade: float
) -> dict[str, float]:
    q = tensors["item_factors"].astype(np.float64)

    def top(liked: np.ndarray) -> np.ndarray:
        return top_ten(q @ user_vector(q, liked, rank=rank, fade=fade), liked)

    return profile_relevance(dataset.items, top)


def _evaluate_arms(
    cfg: FedRecConfig, dataset: Dataset, split: Split, released: np.ndarray, emb: np.ndarray
) -> dict[str, Any]:
    rank = cfg.cooccurrence.collaborative_width(split.n_items)
    collab = collaborative_factors(released, split.n_items, cfg.cooccurrence)
    out: dict[str, Any] = {}
    for arm in ARMS:
        tensors = item_tensors(
            collab,
            item_embeddings=emb if arm == "with-text" else None,
            content_weight=cfg.cooccurrence.cooccurrence_content_weight,
        )
        metrics = evaluate_model(
            scores_of(tensors, split, cfg.cooccurrence),
            split,
            k=10,
            seed=cfg.data.seed,
            genres=dataset.items.genres,
        )
        fade = cfg.cooccurrence.cooccurrence_content_fade
        out[arm] = {
            "metrics": metrics,
            "relevance": _relevance(tensors, dataset, rank, fade),
            # what a device downloads to rank on its own: item factors and biases, float32
            "item_model_bytes": 4 * (tensors["item_factors"].size + tensors["item_bias"].size),
        }
    return out


def _point(
    cfg: FedRecConfig,
    dataset: Dataset,
    split: Split,
    emb: np.ndarray,
    placement: str,
    epsilon: float | None,
    draws: int,
) -> dict[str, Any]:
    point_cfg = cfg.replace(
        **{"user-dp": placement, "cooccurrence-epsilon": epsilon or GOAL_EPSILON}
    )
    survivors = noise_survivors(point_cfg.privacy, split.n_users) if placement == "secagg" else None
    plan = plan_release(
        point_cfg.privacy, point_cfg.cooccurrence, split.n_users, survivors=survivors
    )
    runs = []
    for draw in range(draws):
        logger.info("%s ε %s draw %d/%d", placement, epsilon, draw + 1, draws)
        released = released_sum(point_cfg, split, plan)
        runs.append(_evaluate_arms(point_cfg, dataset, split, released, emb))
    arms = {}
    for arm in ARMS:
        per_draw = [r[arm] for r in runs]
        metrics = {
            k: float(np.mean([d["metrics"][k] for d in per_draw])) for k in per_draw[0]["metrics"]
        }
        relevance = {
            k: float(np.mean([d["relevance"][k] for d in per_draw]))
            for k in per_draw[0]["relevance"]
        }
        arms[arm] = {
            "metrics": metrics,
            "ndcg_runs": [d["metrics"][NDCG] for d in per_draw],
            "relevance": relevance,
            "item_model_bytes": max(d["item_model_bytes"] for d in per_draw),
        }
    return {"placement": placement, "epsilon": epsilon, "plan": plan.to_dict(), "arms": arms}


def exact_ease(
    cfg: FedRecConfig,
    dataset: Dataset,
    split: Split,
    emb: np.ndarray,
    baselines_path: Path,
    grid: dict[str, tuple[float, ...]] = EASE_GRID,
) -> dict[str, Any]:
    """The no-DP goal's arm: the exact sum's EASE item model, tuned on validation.

    One exact release (``user-dp = off``: what SecAgg+ would sum, without noise); every grid
    point is post-processing of it, chosen by validation NDCG@10 of the collaborative arm
    and then evaluated once on test, both arms, and user by user against the best baseline.
    """
    off = cfg.replace(**{"user-dp": "off", "cooccurrence-item-model": "ease"})
    exact = released_sum(off, split, plan_release(off.privacy, off.cooccurrence, split.n_users))
    tried = []
    for l2 in grid["cooccurrence-l2"]:
        for dropout in grid["cooccurrence-dropout"]:
            point = off.replace(**{"cooccurrence-l2": l2, "cooccurrence-dropout": dropout})
            collab = collaborative_factors(exact, split.n_items, point.cooccurrence)
            valid = evaluate_model(
                scores_of(item_tensors(collab), split, point.cooccurrence),
                split,
                k=10,
                target="valid",
                seed=cfg.data.seed,
            )[NDCG]
            tried.append({"cooccurrence-l2": l2, "cooccurrence-dropout": dropout, "valid": valid})
            logger.info("exact EASE λ %g p %g: validation NDCG@10 %.4f", l2, dropout, valid)
    chosen = max(tried, key=lambda row: row["valid"])
    best = off.replace(**{k: chosen[k] for k in ("cooccurrence-l2", "cooccurrence-dropout")})
    return {
        "grid": {k: list(v) for k, v in grid.items()},
        "tried": tried,
        "chosen": {k: chosen[k] for k in ("cooccurrence-l2", "cooccurrence-dropout")},
        "arms": _evaluate_arms(best, dataset, split, exact, emb),
        "paired": paired_against_best(best, exact, baselines_path, split, emb),
    }


def _user_ndcgs(score_fn: Any, split: Split) -> np.ndarray:
    """Each test user's NDCG@10 (full ranking, train and validation items excluded)."""
    return user_ndcgs(score_fn, split, np.flatnonzero(split.test_items >= 0))


def paired_against_best(
    tuned: FedRecConfig, exact: np.ndarray, baselines_path: Path, split: Split, emb: np.ndarray
) -> dict[str, Any]:
    """Per-user paired difference of the exact EASE arms against the best baseline, refitted.

    The baseline is refitted here with the hyperparameters its tuning chose (``baselines``
    holds only its averages), so the two are compared user by user on the same test items.
    """
    saved = json.loads(baselines_path.read_text())
    name = max(
        (n for n in saved["baselines"] if n != "popularity"),
        key=lambda n: saved["baselines"][n]["metrics"][NDCG],
    )
    chosen = saved["baselines"][name]["tuning"]["chosen"]
    model = builders(seed=saved["settings"]["seed"], mf_epochs=MF_EPOCHS)[name](**chosen)
    theirs = _user_ndcgs(model.fit(split).score, split)
    collab = collaborative_factors(exact, split.n_items, tuned.cooccurrence)
    out: dict[str, Any] = {"baseline": name, "params": chosen}
    out["baseline_ndcg"] = float(theirs.mean())
    for arm in ARMS:
        tensors = item_tensors(
            collab,
            item_embeddings=emb if arm == "with-text" else None,
            content_weight=tuned.cooccurrence.cooccurrence_content_weight,
        )
        ours = _user_ndcgs(scores_of(tensors, split, tuned.cooccurrence), split)
        diff = paired_difference(ours, theirs)
        out[arm] = {"ndcg": float(ours.mean()), **dataclasses.asdict(diff)}
    return out


def _dp_popularity(split: Split, epsilon: float, draws: int, seed: int) -> dict[str, Any]:
    runs = []
    for _ in range(draws):
        model = DPPopularity(epsilon=epsilon).fit(split)
        runs.append(evaluate_model(model.score, split, k=10, seed=seed)[NDCG])
    return {"epsilon": epsilon, "ndcg_runs": runs, NDCG: float(np.mean(runs))}


def run_cooccurrence_bench(
    *,
    overrides: dict[str, Any] | None,
    output_dir: Path,
    name: str = "cooccurrence",
    epsilons: Sequence[float] = EPSILONS,
    draws: int = 3,
    placement: str = "secagg",
    baselines_path: Path | None = None,
) -> dict[str, Any]:
    """Every point, written to ``<output_dir>/<name>.json``, ``.md`` and ``.png``."""
    from fedrec.shared.models.text_cache import default_cache_dir, text_embeddings

    if draws < 1:
        raise ValueError(f"draws must be >= 1, got {draws}")
    cfg = resolve_config({}, {**deployable(placement), **(overrides or {})})
    dataset, split = load_split(cfg.data)
    baselines = _baselines(baselines_path or output_dir / "baselines.json", cfg)
    cache = Path(cfg.text.text_cache_dir or default_cache_dir())
    emb = text_embeddings(dataset.items.texts, cache, max_length=cfg.text.text_max_length)
    popular = Popularity().fit(split)
    pop_ndcg = evaluate_model(popular.score, split, k=10, seed=cfg.data.seed)[NDCG]
    pop_scores = popular.score(np.zeros(1, np.int64))[0]
    pop_relevance = profile_relevance(dataset.items, lambda liked: top_ten(pop_scores, liked))
    exact = measure("no DP", lambda: _point(cfg, dataset, split, emb, "off", None, 1))
    source = baselines_path or output_dir / "baselines.json"
    ease = measure("no DP, EASE", lambda: exact_ease(cfg, dataset, split, emb, source))
    points = [
        measure(
            f"{placement} ε {eps:g}",
            partial(_point, cfg, dataset, split, emb, placement, eps, draws),
        )
        for eps in epsilons
    ]
    dp_pop = [_dp_popularity(split, eps, draws, cfg.data.seed) for eps in epsilons]
    result = {
        "benchmark": name,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "dataset": cfg.data.dataset,
        "users": split.n_users,
        "items": split.n_items,
        "settings": cfg.to_run_config(),
        "placement": placement,
        "draws": draws,
        "popularity": {NDCG: pop_ndcg, "relevance": pop_relevance},
        "dp_popularity": dp_pop,
        "baselines": baselines,
        "no_dp": exact,
        "exact_ease": ease,
        "points": points,
        "profiles": {k: {"liked": list(v[0]), "genres": sorted(v[1])} for k, v in PROFILES.items()},
        "goal": _goal(points, pop_ndcg, placement),
        "defaults_chosen_on": DEFAULTS_CHOSEN_ON,
        "defaults_tuning": _tuning(output_dir / f"{TUNING_STEM}.json", cfg),
        "defaults_note": DEFAULTS_NOTE,
        "bytes_per_client": 4 * vector_size(split.n_items),
        "item_model_bytes": {
            arm: (points or [exact])[-1]["arms"][arm]["item_model_bytes"] for arm in ARMS
        },
        "machine": machine_stamp(),
    }
    save(result, output_dir, name, kind="cooccurrence")
    return result


def _tuning(path: Path, cfg: FedRecConfig) -> dict[str, Any] | None:
    """The held-out choice of rank, content weight and fade (``--tune``), if made here."""
    if not path.exists():
        return None
    saved = json.loads(path.read_text())
    if saved.get("dataset") != cfg.data.dataset:
        return None  # chosen on another data set: the report says they were fixed defaults
    keys = ("date", "draws", "epsilon", "chosen")
    return {"source": str(path), **{k: saved[k] for k in keys}}


def _goal(points: Sequence[dict[str, Any]], pop_ndcg: float, placement: str) -> dict[str, Any]:
    """The user-level goal: at ε <= 4, mean of the draws >= 1.25x popularity, CI > 1.15x.

    Only secagg or local placements count: the server must never see one user's term.
    """
    best: dict[str, Any] | None = None
    for point in points if placement in ("secagg", "local") else ():
        if point["epsilon"] is None or point["epsilon"] > GOAL_EPSILON:
            continue
        for arm in ARMS:
            ratios = [r / pop_ndcg for r in point["arms"][arm]["ndcg_runs"]]
            ci = mean_interval(ratios)
            row = {"epsilon": point["epsilon"], "arm": arm, "ratio": ci}
            met = ci["mean"] >= GOAL_RATIO and ci["low"] > GOAL_LOWER and len(ratios) >= 3
            row["met"] = bool(met)
            if best is None or (met, ci["mean"]) > (best["met"], best["ratio"]["mean"]):
                best = row
    return {
        "epsilon": GOAL_EPSILON,
        "rule": f"secagg or local noise, at user-level ε <= {GOAL_EPSILON:g}: mean NDCG@10 "
        "over >= 3 fresh draws >= "
        f"{GOAL_RATIO}x popularity with the 95% interval above {GOAL_LOWER}x",
        "best": best,
    }


# ---- scale: a federation m times larger, by a stated model --------------------------

SCALES = (1, 2, 5, 10, 30, 100)
SCALE_EPSILONS = (1.0, 4.0)


def noise_on_sum(cfg: FedRecConfig, users: int, epsilon: float, placement: str) -> float:
    """The std of the noise the sum carries for ``users`` clients at ``epsilon``."""
    point = cfg.replace(**{"user-dp": placement, "cooccurrence-epsilon": epsilon})
    survivors = noise_survivors(point.privacy, users) if placement == "secagg" else None
    plan = plan_release(point.privacy, point.cooccurrence, users, survivors=survivors)
    if placement == "central":
        return plan.server_std
    return float(plan.client_std * np.sqrt(users))


def run_scale_bench(
    *,
    overrides: dict[str, Any] | None,
    output_dir: Path,
    name: str = "cooccurrence-scale",
    scales: Sequence[int] = SCALES,
    epsilons: Sequence[float] = SCALE_EPSILONS,
    draws: int = 3,
    placement: str = "secagg",
) -> dict[str, Any]:
    """NDCG@10 at fixed ε as the federation grows: ``<name>.json``, ``.md``, ``.png``.

    The model of a larger federation: ``m`` times as many users who look like ML-100K's, so
    the exact sum is ``m`` times the observed one, while the noise is what the placement
    adds for ``m x N`` clients at δ = 1/(mN)^1.1. The test users are ML-100K's own.
    """
    from fedrec.shared.models.text_cache import default_cache_dir, text_embeddings

    cfg = resolve_config({}, {**deployable(placement), **(overrides or {})})
    dataset, split = load_split(cfg.data)
    cache = Path(cfg.text.text_cache_dir or default_cache_dir())
    emb = text_embeddings(dataset.items.texts, cache, max_length=cfg.text.text_max_length)
    off = cfg.replace(**{"user-dp": "off"})
    exact = released_sum(off, split, plan_release(off.privacy, off.cooccurrence, split.n_users))
    pop_ndcg = evaluate_model(Popularity().fit(split).score, split, k=10, seed=cfg.data.seed)[NDCG]
    rows = []
    for eps in epsilons:
        for m in scales:
            users = m * split.n_users
            std = noise_on_sum(cfg, users, eps, placement)
            ndcgs = []
            for _ in range(draws):
                noise = SecureRandom().normal(exact.shape, std)
                tensors = item_tensors(
                    collaborative_factors(m * exact + noise, split.n_items, cfg.cooccurrence),
                    item_embeddings=emb,
                    content_weight=cfg.cooccurrence.cooccurrence_content_weight,
                )
                ndcgs.append(
                    evaluate_model(
                        scores_of(tensors, split, cfg.cooccurrence), split, k=10, seed=cfg.data.seed
                    )[NDCG]
                )
            rows.append(
                {"epsilon": eps, "scale": m, "users": users, "noise_std": std, "ndcg_runs": ndcgs}
            )
            logger.info("ε %g, %d users: NDCG@10 %.4f", eps, users, float(np.mean(ndcgs)))
    result = {
        "benchmark": name,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "dataset": cfg.data.dataset,
        "users": split.n_users,
        "placement": placement,
        "draws": draws,
        "settings": cfg.to_run_config(),
        "popularity": {NDCG: pop_ndcg},
        "goal_ratio": GOAL_RATIO,
        "rows": rows,
    }
    save(result, output_dir, name, kind="cooccurrence-scale")
    return result
