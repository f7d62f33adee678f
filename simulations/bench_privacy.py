"""ε–utility curve: what record-level and user-level DP cost the federated model on ML-100K.

For each target ε (default 0.5, 1, 2, 4, 8) and ∞ (no DP) one federation is trained from
the same seeded initial model with the same settings -- the tuned non-private training of
the ``ml100k-nodp`` scenario (every client every round, local Adam lr 0.01, 2 local epochs,
server learning rate 100) with ``text-tower = off`` -- for a few rounds (default 5), in the
plain single-process loop of :mod:`fedrec.simulation.plain_loop` (the same client functions and
server aggregation as a Flower round; Flower's overhead is measured by ``bench federation``).
It is then scored by the project's personalised federated evaluation
(:meth:`PlainLoop.evaluate`: each client fits its private factor on-device and ranks
its held-out test item against the full catalogue), NDCG@10 pooled over all users.

- **record level** (DP-SGD on every client, unit = one interaction): the noise multiplier
  is calibrated for the target ε over the *whole run*. Every client samples records at the
  same rate and runs ``local-epochs / q`` steps a round (``shared/training.py: dp_plan``;
  rounding to whole records gives a few distinct ``(q, steps)`` plans), so Opacus'
  ``get_noise_multiplier`` is run for the plans that spend the most and the largest σ is
  taken; the project's own accountant (``shared/privacy/accounting.py``) then checks it,
  and σ is raised where that accountant says the target would be passed. The ε reported is
  the one the clients' own accountants hold at the end, maximum over clients.
- **user level, central placement** (unit = everything one user contributed): the server
  clips every client's whole update to ``C`` and adds ``N(0, (σC)²)`` to their sum once,
  ``q`` = clients per round / clients, δ = the project's default ``1 / N^1.1``; σ is
  calibrated over the rounds with the project's user-level accountant
  (``shared/privacy/accounting.py``). ``C`` is, unless given, the median L2 norm of the client
  updates of the non-private run (all its rounds), which is run first.

"What it takes" (``scale``): the noise on the averaged update is ``σC / K`` for ``K``
clients per round. A run of the same ``K`` clients at ``σ' / m``, where ``σ'`` is the σ a
federation of ``m × N`` users (every one in every round) needs for the goal ε at its own δ,
carries the noise on the average of that larger federation at the goal ε -- assuming its
users' updates look like these. Those rows are labelled as the extrapolation they are.
"""

from __future__ import annotations

import logging
import math
import os
import platform
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fedrec.server.secagg import noise_survivors, secagg_threshold
from fedrec.shared.baselines import popularity_score_fn
from fedrec.shared.config import FedRecConfig, resolve_config
from fedrec.shared.data import load_split
from fedrec.shared.data.dataset import Split
from fedrec.shared.evaluation import (
    evaluate_model,
    paired_standard_error,
    standard_error,
    summarize,
)
from fedrec.shared.evaluation.metrics import ndcg_at_k
from fedrec.shared.models.initial import init_global
from fedrec.shared.privacy import (
    calibrate_record,
    calibrate_user,
    default_delta,
    noise_std,
    record_plans,
    resolve_delta,
)
from fedrec.simulation.plain_loop import PlainLoop, sample_partitions
from fedrec.simulation.scenarios import load_scenario
from fedrec.simulations import report
from fedrec.simulations.report import write_json
from fedrec.simulations.result_keys import NDCG, PLACEMENT_LEVELS, K, point_at

logger = logging.getLogger(__name__)

EPSILONS: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0)
LEVELS = ("record", "user", "local", "secagg")
# Record-level points train with the product's DP-SGD defaults for these keys (a -c
# override wins): the non-private tuning (local Adam) turns noisy gradients into steps of
# the learning rate on every coordinate, which DP-SGD does not need.
RECORD_KEYS = ("client-optimizer", "learning-rate", "dp-sample-rate")
SCENARIO = "ml100k-nodp"
GOAL_EPSILON = 8.0
GOAL_RATIO = 0.9
GOAL_ISSUE = 4  # the issue that set the goal, named in the report
METRIC = NDCG
# Keys of the scenario that are about the run, not the training.
_RUN_KEYS = ("num-rounds", "run-name", "fraction-evaluate")


def record_settings(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The record-level points' training keys: the product's DP-SGD defaults, unless given."""
    defaults = FedRecConfig().to_run_config()
    return {k: defaults[k] for k in RECORD_KEYS if k not in (overrides or {})}


def client_noise_on_average(placement: str, sigma: float, clip: float, k: int, t: int) -> float:
    """The std of the noise on each coordinate of the averaged update, per placement.

    central: σC once on the sum; local: σC from each of the K clients; secagg: σC/sqrt(t)
    from each of the K clients (t = the survivors each share is sized for: SecAgg+'s threshold
    or the survivor floor). Divided by K.
    """
    # One party's std is the project's own noise_std; the K clients' shares add in variance.
    per_party = noise_std(placement, sigma, clip, survivors=t if placement == "secagg" else None)
    parties = 1 if placement == "central" else k
    return per_party * math.sqrt(parties) / k


def train_settings(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The shared training settings of every point: the ``ml100k-nodp`` scenario, no text."""
    settings = {k: v for k, v in load_scenario(SCENARIO).items() if k not in _RUN_KEYS}
    settings.update({"text-tower": "off", "dp-enabled": False, "user-dp": "off"})
    settings.update(overrides or {})
    return settings


# -- running points -------------------------------------------------------------------------


@dataclass
class Bench:
    """What every point shares: data sizes, rounds, sampling, where client states go."""

    n_users: int
    n_items: int
    rounds: int
    fraction: float
    seed: int
    work: Path

    def partitions(self, rnd: int) -> list[int]:
        """The clients of round ``rnd`` (all of them at fraction 1)."""
        if self.fraction >= 1:
            return list(range(self.n_users))
        return sample_partitions(self.n_users, self.fraction, seed=self.seed, rnd=rnd)


def random_ranking_ndcg(split: Split, k: int = K) -> float:
    """Expected NDCG@k of a uniformly random full ranking, averaged over users with a test item.

    A user's candidates are the catalogue minus its training and validation items; the
    test item's rank is uniform over them.
    """
    gains = 1.0 / np.log2(np.arange(2, k + 2))
    values = []
    for user, train_items in enumerate(split.train_items_by_user()):
        if split.test_items[user] < 0:
            continue
        excluded = set(train_items.tolist()) | ({int(split.valid_items[user])} - {-1})
        candidates = split.n_items - len(excluded)
        values.append(float(gains[: min(k, candidates)].sum()) / max(candidates, 1))
    return float(np.mean(values)) if values else float("nan")


def ndcg_standard_error(ranks: Sequence[int], k: int = K) -> float:
    """The standard error of the mean NDCG@k over users."""
    return standard_error(ndcg_at_k(np.asarray(ranks, dtype=np.int64), k))


def paired_ndcg_standard_error(ranks: Sequence[int], reference: Sequence[int], k: int = K) -> float:
    """The standard error of the mean per-user NDCG@k difference to ``reference``'s ranks."""
    return paired_standard_error(
        ndcg_at_k(np.asarray(ranks, dtype=np.int64), k),
        ndcg_at_k(np.asarray(reference, dtype=np.int64), k),
    )


def run_point(cfg: FedRecConfig, bench: Bench, label: str) -> dict[str, Any]:
    """Train one federation for ``bench.rounds`` rounds, evaluate it, and say what it spent."""
    state_root = bench.work / label.replace(" ", "-").replace("=", "")
    shutil.rmtree(state_root, ignore_errors=True)
    fed = PlainLoop(cfg, bench.n_users, init_global(cfg, bench.n_items), state_root)
    clip = cfg.privacy.user_clip if cfg.privacy.user_dp != "off" else None
    rounds: list[dict[str, Any]] = []
    t_start = time.perf_counter()
    for rnd in range(1, bench.rounds + 1):
        parts = bench.partitions(rnd)
        seconds = fed.train_round(parts, rnd)
        norms = np.asarray(fed.last_norms, dtype=np.float64)
        row: dict[str, Any] = {
            "round": rnd,
            "clients": len(parts),
            "seconds": seconds,
            "update_norm_median": float(np.median(norms)) if norms.size else None,
            "update_norm_p10": float(np.quantile(norms, 0.1)) if norms.size else None,
            "update_norm_p90": float(np.quantile(norms, 0.9)) if norms.size else None,
        }
        if clip is not None and norms.size:
            row["clipped_fraction"] = float(np.mean(norms > clip))
        rounds.append(row)
        logger.info(
            "%s: round %d/%d, %d clients, %.1fs, median update norm %.3g%s",
            label,
            rnd,
            bench.rounds,
            len(parts),
            seconds,
            row["update_norm_median"] or float("nan"),
            f", {row['clipped_fraction']:.0%} clipped to {clip:.3g}" if clip is not None else "",
        )
    train_s = time.perf_counter() - t_start
    t0 = time.perf_counter()
    evals, n_items = fed.user_evals(k=K)
    metrics = summarize(evals, k=K, n_items=n_items)
    eval_s = time.perf_counter() - t0
    out: dict[str, Any] = {
        "label": label,
        "metrics": metrics,
        "ndcg_standard_error": ndcg_standard_error([e.rank_full for e in evals]),
        "ranks_full": [int(e.rank_full) for e in evals],
        "rounds": rounds,
        "last_round_norms": [float(x) for x in fed.last_norms],
        "train_s": train_s,
        "eval_s": eval_s,
    }
    if cfg.privacy.dp_enabled:
        eps = fed.record_epsilons()
        out["record_epsilon_max"] = max(eps) if eps else None
        out["record_epsilon_min"] = min(eps) if eps else None
    user = fed.user_privacy()
    if user is not None:
        out["user_privacy"] = {
            k: user[k]
            for k in ("epsilon", "delta", "accountant", "accountant_note", "noise_multiplier")
        } | {
            k: user[k]
            for k in ("clip", "rounds", "sample_rate", "placement", "epsilon_against_server")
        }
    logger.info(
        "%s: NDCG@10 %.4f (± %.4f), HR@10 %.4f; trained %.0fs, evaluated %.0fs",
        label,
        metrics[METRIC],
        out["ndcg_standard_error"],
        metrics[f"hr@{K}_full"],
        train_s,
        eval_s,
    )
    shutil.rmtree(state_root, ignore_errors=True)
    return out


RUN_KEYS = ("metrics", "ndcg_standard_error", "paired_se_vs_no_dp", "train_s", "eval_s")


def combine_runs(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One point from runs of the same settings with fresh noise: means, and every run.

    ``metrics`` and the standard errors are means over the runs; ``ndcg_runs`` lists each
    run's NDCG@10; the record-level ε is the largest any run reached.
    """
    if not runs:
        raise ValueError("no runs to combine")
    point = dict(runs[0])
    ndcgs = [float(r["metrics"][METRIC]) for r in runs]
    point["metrics"] = {
        k: float(np.mean([r["metrics"][k] for r in runs])) for k in runs[0]["metrics"]
    }
    for key in ("ndcg_standard_error", "paired_se_vs_no_dp"):
        point[key] = float(np.mean([r[key] for r in runs]))
    point["ndcg_runs"] = ndcgs
    point["ndcg_run_std"] = float(np.std(ndcgs, ddof=1)) if len(ndcgs) > 1 else None
    if all("record_epsilon_max" in r for r in runs):
        point["record_epsilon_max"] = max(float(r["record_epsilon_max"]) for r in runs)
    point["runs"] = [{k: r[k] for k in (*RUN_KEYS, "rounds") if k in r} for r in runs]
    point.pop("rounds", None)
    point["rounds"] = runs[0]["rounds"]
    point["train_s"] = float(sum(r["train_s"] for r in runs))
    point["eval_s"] = float(sum(r["eval_s"] for r in runs))
    return point


def run_privacy_benchmark(
    *,
    output_dir: Path,
    runs_dir: Path,
    rounds: int = 5,
    epsilons: Sequence[float] = EPSILONS,
    levels: Sequence[str] = LEVELS,
    user_clip: float = 0.0,
    user_clip_scale: float = 1.0,
    scale: Sequence[float] = (),
    repeats: int = 1,
    goal_repeats: int = 3,
    overrides: dict[str, Any] | None = None,
    name: str = "privacy",
    notes: Sequence[str] = (),
) -> dict[str, Any]:
    """Run ∞ and every (level, ε) point; write ``<name>.json``, ``.md`` and ``.png``.

    ``user_clip`` 0 takes ``user_clip_scale`` x the median update norm of the non-private
    run (a clip below the median trades bias for less noise). Every DP point is
    trained ``repeats`` times with fresh noise, the user-level point at the goal ε
    ``max(repeats, goal_repeats)`` times (its verdict should not rest on one noise draw);
    a point reports the mean and keeps every run. The JSON is rewritten after every point
    (``complete: false`` until the end).
    """
    for level in levels:
        if level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    if any(not (e > 0 and math.isfinite(e)) for e in epsilons):
        raise ValueError(f"epsilons must be positive numbers, got {list(epsilons)}")
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    if not (user_clip_scale > 0 and math.isfinite(user_clip_scale)):
        raise ValueError(f"user-clip-scale must be a positive number, got {user_clip_scale}")
    if repeats < 1 or goal_repeats < 0:
        raise ValueError(
            f"repeats must be >= 1 and goal-repeats >= 0, got {repeats}, {goal_repeats}"
        )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny per-client models: more threads only contend
    # Opacus warns about every empty Poisson batch (expected with small clients; fedrec runs
    # them as noise-only steps): thousands of lines that would bury the progress.
    opacus_log = logging.getLogger("opacus")
    opacus_level = opacus_log.level
    opacus_log.setLevel(logging.ERROR)
    try:
        return _run(
            output_dir=output_dir,
            runs_dir=runs_dir,
            rounds=rounds,
            epsilons=epsilons,
            levels=levels,
            user_clip=user_clip,
            user_clip_scale=user_clip_scale,
            scale=scale,
            repeats=repeats,
            goal_repeats=goal_repeats,
            overrides=overrides,
            name=name,
            notes=notes,
        )
    finally:
        torch.set_num_threads(threads)
        opacus_log.setLevel(opacus_level)


def _run(
    *,
    output_dir: Path,
    runs_dir: Path,
    rounds: int,
    epsilons: Sequence[float],
    levels: Sequence[str],
    user_clip: float,
    user_clip_scale: float,
    scale: Sequence[float],
    repeats: int,
    goal_repeats: int,
    overrides: dict[str, Any] | None,
    name: str,
    notes: Sequence[str],
) -> dict[str, Any]:
    t_start = time.perf_counter()
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    settings = train_settings(overrides)
    base = resolve_config({}, {**settings, "output-dir": str(runs_dir)})
    settings.setdefault("embedding-dim", base.train.embedding_dim)  # the report names it
    _, split = load_split(base.data)
    bench = Bench(
        n_users=split.n_users,
        n_items=split.n_items,
        rounds=rounds,
        fraction=base.federation.fraction_train,
        seed=base.data.seed,
        work=runs_dir / f"bench-privacy-{stamp}",
    )
    k_per_round = len(bench.partitions(1))
    q_user = k_per_round / bench.n_users
    user_delta = resolve_delta(base.privacy, bench.n_users)
    record_keys = record_settings(overrides)
    record_base = base.replace(**record_keys)
    popularity = evaluate_model(popularity_score_fn(split), split, k=K, seed=base.data.seed)
    result: dict[str, Any] = {
        "benchmark": name,
        "complete": False,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "dataset": base.data.dataset,
        "users": bench.n_users,
        "items": bench.n_items,
        "rounds": rounds,
        "clients_per_round": k_per_round,
        "epsilons": list(epsilons),
        "levels": list(levels),
        "repeats": repeats,
        "goal_repeats": goal_repeats,
        "scenario": SCENARIO,
        "settings": settings,
        "notes": list(notes),
        "metric": METRIC,
        "evaluation": (
            "personalised federated evaluation (PlainLoop.evaluate): every client fits "
            f"its private factor for personalize-epochs={base.federation.personalize_epochs} "
            "on its own training records, then ranks its held-out (last) item against every "
            "item it has not interacted with in training/validation; pooled over all users"
        ),
        "loop": "plain single-process federation (same client + aggregation code as Flower)",
        "machine": {
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "torch": torch.__version__,
        },
        "popularity": {METRIC: popularity[METRIC], f"hr@{K}_full": popularity[f"hr@{K}_full"]},
        "random_ranking": {METRIC: random_ranking_ndcg(split)},
        "record": {
            "max_grad_norm": record_base.privacy.dp_max_grad_norm,
            "dp_sample_rate": record_base.privacy.dp_sample_rate,
            "delta": record_base.privacy.dp_delta,
            "settings": record_keys,
            "points": [],
        },
        "user": {
            "placement": "central",
            "sample_rate": q_user,
            "delta": user_delta,
            "accountant": base.privacy.user_accountant,
            "points": [],
            "scale": [],
        },
        **{
            level: {
                "placement": level,
                "secagg_threshold": secagg_threshold(base.privacy, k_per_round),
                "reconstruction_threshold": base.privacy.secagg_reconstruction_threshold,
                "points": [],
            }
            for level in ("local", "secagg")
        },
    }

    def save() -> None:
        # After every point, so a long run that stops keeps what it measured.
        result["total_s"] = time.perf_counter() - t_start
        write_json(result, output_dir, name)

    # ∞: no DP. Its update norms choose the user-level clip bound.
    point = run_point(base, bench, "no DP")
    reference = point.pop("ranks_full")
    last_norms = point.pop("last_round_norms")
    result["no_dp"] = point
    medians = [r["update_norm_median"] for r in point["rounds"]]
    clip = user_clip if user_clip > 0 else user_clip_scale * float(np.median(medians))
    result["user"]["clip"] = clip
    result["user"]["clip_source"] = (
        "given (--user-clip)"
        if user_clip > 0
        else ("" if user_clip_scale == 1 else f"{user_clip_scale:g} x the ")
        + "median over rounds of the median L2 norm of the client updates in the "
        "non-private run; per-round medians " + ", ".join(f"{m:.3g}" for m in medians)
    )
    result["user"]["last_round_norm_quantiles"] = {
        str(q): float(np.quantile(last_norms, q)) for q in (0.1, 0.25, 0.5, 0.75, 0.9)
    }
    save()

    def finish(point: dict[str, Any]) -> dict[str, Any]:
        point.pop("last_round_norms", None)
        point["paired_se_vs_no_dp"] = paired_ndcg_standard_error(point.pop("ranks_full"), reference)
        return point

    def repeated(cfg: FedRecConfig, label: str, n: int) -> dict[str, Any]:
        runs = []
        for i in range(n):
            suffix = f" (run {i + 1}/{n})" if n > 1 else ""
            runs.append(finish(run_point(cfg, bench, label + suffix)))
        return combine_runs(runs)

    def user_cfg(sigma: float, placement: str = "central") -> FedRecConfig:
        return base.replace(
            **{
                "user-dp": placement,
                "user-clip": clip,
                "user-noise-multiplier": sigma,
                "user-delta": user_delta,
            }
        )

    survivors = noise_survivors(base.privacy, k_per_round)
    for level, placement in PLACEMENT_LEVELS.items():
        if level not in levels:
            continue
        for eps in sorted(epsilons, reverse=True):
            cal = calibrate_user(
                eps,
                q=q_user,
                rounds=rounds,
                delta=user_delta,
                accountant=base.privacy.user_accountant,
            )
            goal = level == "user" and math.isclose(eps, GOAL_EPSILON)
            n = max(repeats, goal_repeats) if goal else repeats
            label = f"{level} eps={eps:g}" if level == "user" else f"user {level} eps={eps:g}"
            point = repeated(user_cfg(cal["sigma"], placement), label, n)
            point["calibration"] = cal
            point["noise_std_on_average"] = client_noise_on_average(
                placement, cal["sigma"], clip, k_per_round, survivors
            )
            result[level]["points"].append(point)
            save()
    if "user" in levels:
        for m in scale:
            big_n = round(m * bench.n_users)
            big_delta = default_delta(big_n)
            cal = calibrate_user(
                GOAL_EPSILON,
                q=q_user,
                rounds=rounds,
                delta=big_delta,
                accountant=base.privacy.user_accountant,
            )
            sigma = cal["sigma"] / m
            point = repeated(user_cfg(sigma), f"user x{m:g} users", repeats)
            point["scale"] = {
                "multiplier": m,
                "users": big_n,
                "clients_per_round": round(m * k_per_round),
                "delta": big_delta,
                "goal_epsilon": GOAL_EPSILON,
                "sigma_of_that_federation": cal["sigma"],
                "sigma_run": sigma,
            }
            point["noise_std_on_average"] = sigma * clip / k_per_round
            result["user"]["scale"].append(point)
            save()

    if "record" in levels:
        counts = [int(np.sum(split.train.users == u)) for u in range(bench.n_users)]
        plans = record_plans(counts, record_base.train, record_base.privacy)
        result["record"]["plans"] = [
            {"sample_rate": q, "steps_per_round": s, "clients": n}
            for (q, s), n in sorted(plans.items())
        ]
        for eps in sorted(epsilons, reverse=True):
            rcal = calibrate_record(eps, plans, rounds=rounds, delta=record_base.privacy.dp_delta)
            cfg = record_base.replace(**{"dp-enabled": True, "dp-noise-multiplier": rcal.sigma})
            point = repeated(cfg, f"record eps={eps:g}", repeats)
            point["calibration"] = rcal.to_dict()
            result["record"]["points"].append(point)
            save()

    result["goal"] = goal_check(result)
    result["complete"] = True
    result["total_s"] = time.perf_counter() - t_start
    report.save(result, output_dir, name, kind="privacy")
    shutil.rmtree(bench.work, ignore_errors=True)
    return result


# -- the goal ----------------------------------------------------------------------------------


def goal_check(result: dict[str, Any]) -> dict[str, Any]:
    """Whether user-level NDCG@10 at the goal ε is within 0.9x the non-private model's."""
    reference = float(result["no_dp"]["metrics"][METRIC])
    point = point_at(result["user"]["points"], GOAL_EPSILON)
    out: dict[str, Any] = {
        "issue": GOAL_ISSUE,
        "epsilon": GOAL_EPSILON,
        "ratio_required": GOAL_RATIO,
        "reference_ndcg": reference,
        "threshold_ndcg": GOAL_RATIO * reference,
        "popularity_ndcg": float(result["popularity"][METRIC]),
    }
    if point is None:
        out.update({"ndcg": None, "ratio": None, "met": None})
        return out
    ndcg = float(point["metrics"][METRIC])
    out.update({"ndcg": ndcg, "ratio": ndcg / reference if reference else None})
    out["met"] = bool(reference and ndcg >= GOAL_RATIO * reference)
    return out
