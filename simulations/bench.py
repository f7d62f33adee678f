"""Quality benchmark on one data set: strong centralized baselines and federated models.

The centralized baselines (:mod:`fedrec.simulations.bench_baselines`) are popularity, DP
popularity at the given user-level ε, item-kNN, EASE, iALS and the project's MF/BPR trained
centrally, each tuned on the validation items. The federated arms are plain MF
(``text-tower = off``) and the hybrid with text towers (``text-tower = heads``, the
default), each without DP (scenario ``ml100k-nodp``) and with record-level DP-SGD
(``ml100k-dp``, the demo's settings). The model is set per arm, so a scenario's or config's
own ``text-tower`` does not decide which model an arm names.

Everything is evaluated on the same seeded leave-last-out split with both protocols (full
ranking; the test item among 99 sampled negatives), and every NDCG@10 is also given as a
ratio to the best non-private centralized baseline. Wall time and the peak resident memory
of the whole process tree (the driver plus Ray's workers) are measured while each part
runs. Results go to ``docs/benchmarks/<name>.json`` and a Markdown report beside it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fedrec.shared.checkpoint import load_checkpoint
from fedrec.shared.config import resolve_config
from fedrec.shared.data import load_split
from fedrec.shared.evaluation.ranking import SAMPLED_NEGATIVES
from fedrec.simulation.evaluate import evaluate_run
from fedrec.simulation.runner import simulate
from fedrec.simulation.scenarios import load_scenario
from fedrec.simulations.bench_baselines import DP_EPSILONS, add_ratios, reference_of, run_baselines
from fedrec.simulations.measure import PeakMemory, machine_stamp, measure
from fedrec.simulations.report import save
from fedrec.simulations.result_keys import NDCG, K

__all__ = ["PeakMemory", "run_quality_benchmark"]

logger = logging.getLogger(__name__)

# A federated arm's curve is checked against this share of the reference's NDCG.
REACH_FRACTION = 0.95

# Federated models the benchmark can train: name -> text-tower setting.
MODELS = {"MF": "off", "hybrid": "heads"}
# Federated scenarios: result key part, scenario, DP unit ("none": no DP).
SCENARIOS = (("nodp", "ml100k-nodp", "none"), ("dp", "ml100k-dp", "record"))


def check_models(models: Sequence[str]) -> None:
    """Refuse an empty choice or a name that is not a key of :data:`MODELS`."""
    if not models or any(m not in MODELS for m in models):
        raise ValueError(f"models must be some of {', '.join(MODELS)}, got {list(models)}")


def run_quality_benchmark(
    *,
    overrides: dict[str, Any] | None = None,
    output_dir: Path,
    runs_dir: Path,
    name: str = "quality",
    central_epochs: int = 40,
    models: Sequence[str] = tuple(MODELS),
    baselines_only: bool = False,
    dp_epsilons: Sequence[float] = DP_EPSILONS,
    dp_draws: int = 3,
    grids: Mapping[str, Mapping[str, Sequence[Any]]] | None = None,
) -> dict[str, Any]:
    """Run the baselines (and, unless ``baselines_only``, the federated arms); write the report.

    ``models`` picks the federated models (keys of :data:`MODELS`); each runs without and
    with DP. ``central_epochs`` caps the tuned centralized MF's epochs; ``dp_epsilons`` are
    the user-level ε of DP popularity, released ``dp_draws`` times each; ``grids`` replaces
    baselines' validation grids. Writes ``<output_dir>/<name>.json`` and ``.md``.
    """
    check_models(models)
    started = time.perf_counter()
    overrides = dict(overrides or {})
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    base = {**overrides, "output-dir": str(runs_dir), "resume": False}
    cfg = resolve_config({}, base)
    dataset, split = load_split(cfg.data)
    result: dict[str, Any] = {
        "benchmark": name,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "dataset": cfg.data.dataset,
        "split": "leave-last-out by timestamp per user (test), previous item (validation)",
        "k": K,
        "sampled_negatives": SAMPLED_NEGATIVES,
        "reach_fraction": REACH_FRACTION,
        "baselines_only": baselines_only,
        "settings": cfg.to_run_config()
        | {
            "central-epochs (max, early stopping)": central_epochs,
            "dp-epsilons (user level)": list(dp_epsilons),
            "dp-draws": dp_draws,
        },
        "machine": machine_stamp(),
    }
    result |= run_baselines(
        split,
        genres=dataset.items.genres,
        seed=cfg.data.seed,
        dp_epsilons=dp_epsilons,
        dp_draws=dp_draws,
        accountant=cfg.privacy.user_accountant,
        mf_epochs=central_epochs,
        grids=grids,
    )
    result["reference"] = reference_of(result["baselines"])

    def federated(scenario: str, model: str) -> Callable[[], dict[str, Any]]:
        # Each federated arm runs its shipped scenario (tuned for it), then the caller's
        # overrides, then its model, into a fresh run directory.
        settings = {
            **load_scenario(scenario),
            **base,
            "text-tower": MODELS[model],
            "run-name": f"bench-{scenario}-{model.lower()}-{stamp}",
        }

        def run() -> dict[str, Any]:
            run_dir = simulate(settings)
            arm_cfg = resolve_config({}, settings)
            res = evaluate_run(
                run_dir, personalize_epochs=arm_cfg.federation.personalize_epochs, k=K
            )
            return {
                "metrics": res["metrics"],
                "curve": _curve(run_dir),
                "privacy": res["privacy"],
                "run_dir": str(run_dir),
                "scenario": scenario,
                "settings": arm_cfg.to_run_config(),
            }

        return run

    arms: dict[str, dict[str, Any]] = {}
    if not baselines_only:
        goal = REACH_FRACTION * result["reference"][NDCG]
        for part, scenario, dp in SCENARIOS:
            for model in models:
                key = f"{model.lower()}-{part}"
                arms[key] = {"model": model, "dp": dp} | measure(key, federated(scenario, model))
                reached = f"reached_{REACH_FRACTION:g}_reference"
                arms[key][reached] = _first_reaching(arms[key]["curve"], goal)
    result["arms"] = arms
    add_ratios(result)
    result["wall_s"] = time.perf_counter() - started
    save(result, output_dir, name, kind="quality")
    return result


def _curve(run_dir: Path) -> list[dict[str, float]]:
    """Per round: elapsed federation seconds and the clients' federated NDCG@10 (full)."""
    elapsed, curve = 0.0, []
    for row in load_checkpoint(run_dir).manifest["history"]:
        elapsed += float(row["seconds"])
        key = f"eval/ndcg@{K}_full"
        if key in row:
            curve.append(
                {
                    "round": float(row["round"]),
                    "elapsed_s": elapsed,
                    "ndcg@10_full": float(row[key]),
                    "eval_users": float(row.get("eval/n_users", 0)),
                }
            )
    return curve


def _first_reaching(curve: list[dict[str, float]], goal: float) -> dict[str, float] | None:
    for point in curve:
        if point["ndcg@10_full"] >= goal:
            return {"round": point["round"], "elapsed_s": point["elapsed_s"], "goal": goal}
    return None
