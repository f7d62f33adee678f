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

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fedrec.shared.checkpoint import load_checkpoint
from fedrec.shared.config import resolve_config
from fedrec.shared.data import load_split
from fedrec.simulation.evaluate import evaluate_run
from fedrec.simulation.runner import simulate
from fedrec.simulation.scenarios import load_scenario
from fedrec.simulations.bench_baselines import DP_EPSILONS, add_ratios, reference_of, run_baselines
from fedrec.simulations.measure import PeakMemory, machine_stamp, measure

__all__ = ["PeakMemory", "run_quality_benchmark", "write_report"]

logger = logging.getLogger(__name__)

K = 10
NDCG = f"ndcg@{K}_full"

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
        goal = 0.95 * result["reference"][NDCG]
        for part, scenario, dp in SCENARIOS:
            for model in models:
                key = f"{model.lower()}-{part}"
                arms[key] = {"model": model, "dp": dp} | measure(key, federated(scenario, model))
                arms[key]["reached_0.95_reference"] = _first_reaching(arms[key]["curve"], goal)
    result["arms"] = arms
    add_ratios(result)
    result["wall_s"] = time.perf_counter() - started
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / f"{name}.json").write_text(json.dumps(result, indent=2, default=str))
    write_report(result, output_dir, name)
    return result


def write_report(result: dict[str, Any], output_dir: Path, name: str) -> None:
    """The Markdown report (and the learning-curve plot when there are federated arms)."""
    if "reference" not in result:
        raise ValueError(
            f"{name}.json predates the centralized baselines (it has no 'reference'); "
            "run `fedrec bench quality` again to measure them"
        )
    text = markdown_table(result)
    if any(arm.get("curve") for arm in result.get("arms", {}).values()):
        plot_curves(result, output_dir / f"{name}.png")
        text += f"\n![curves]({name}.png)\n"
    (output_dir / f"{name}.md").write_text(text)


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


BASELINE_LABELS = {
    "popularity": "popularity",
    "item-knn": "item-kNN (cosine)",
    "ease": "EASE",
    "ials": "iALS (implicit)",
    "mf": "MF/BPR, centralized",
}


def baseline_label(key: str) -> str:
    """Display name of a baseline key."""
    return BASELINE_LABELS.get(key, key)


def arm_label(arm: Mapping[str, Any]) -> str:
    """Display name of a federated arm, from its model and DP unit."""
    return f"federated {arm['model']} ({'no DP' if arm['dp'] == 'none' else 'DP'})"


def dp_label(entry: Mapping[str, Any]) -> str:
    """Display name of a DP popularity release."""
    n = len(entry["draws"])
    return f"DP popularity (ε={entry['epsilon']:g}, mean of {n} draw{'s' * (n != 1)})"


def plot_curves(result: dict[str, Any], path: Path) -> None:
    """Federated NDCG@10 per round against the reference baseline and popularity."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for arm in result["arms"].values():
        if arm.get("curve"):
            xs = [p["elapsed_s"] / 60 for p in arm["curve"]]
            sampled = any(p["eval_users"] < arm["curve"][-1]["eval_users"] for p in arm["curve"])
            label = f"{arm_label(arm)}{' (some rounds: sampled clients only)' if sampled else ''}"
            ax.plot(xs, [p["ndcg@10_full"] for p in arm["curve"]], "o-", label=label)
    reference = result["reference"]["baseline"]
    for key, style in ((reference, "--"), ("popularity", ":")):
        level = result["baselines"][key]["metrics"][NDCG]
        ax.axhline(level, linestyle=style, color="k", label=f"{baseline_label(key)} ({level:.4f})")
    ax.set(
        xlabel="federation wall time (min)",
        ylabel="NDCG@10, full ranking (clients' evaluation)",
        title=f"{result['dataset']}: federated rounds vs centralized baselines (test)",
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _cell(metrics: Mapping[str, Any], key: str, digits: int) -> str:
    value = metrics.get(key)
    return "–" if value is None else f"{value:.{digits}f}"


def _row(label: str, entry: Mapping[str, Any], privacy: str) -> str:
    m = entry["metrics"]
    ratio = entry.get(f"over_reference_{NDCG}")
    cells = [
        label,
        privacy,
        _cell(m, f"hr@{K}_full", 4),
        _cell(m, NDCG, 4),
        _cell(m, f"hr@{K}_sampled", 4),
        _cell(m, f"ndcg@{K}_sampled", 4),
        _cell(m, f"coverage@{K}", 3),
        _cell(m, f"ild_genres@{K}", 3),
        _cell(m, f"mean_pop_rank@{K}", 0),
        "–" if ratio is None else f"{ratio:.3f}x",
        f"{entry['wall_s']:.0f}",
        f"{entry['peak_rss_mib']:.0f}",
    ]
    return "| " + " | ".join(cells) + " |"


def _values(values: Sequence[Any]) -> str:
    return "{" + ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values) + "}"


def _tuning_line(key: str, tuning: Mapping[str, Any]) -> str:
    chosen = tuning["chosen"]
    edges = [
        axis
        for axis, values in tuning["grid"].items()
        # The lowest value of an axis starting at 0 (no shrinkage, no decay) is a floor.
        if len(values) > 2 and chosen[axis] in ({min(values), max(values)} - {0})
    ]
    valid = next(t["valid"] for t in tuning["trials"] if t["params"] == chosen)
    fitted = tuning.get("fitted") or {}
    parts = [
        f"- {baseline_label(key)}: "
        + "; ".join(f"{axis} ∈ {_values(values)}" for axis, values in tuning["grid"].items())
        + f" ({len(tuning['trials'])} fits). Chosen: "
        + ", ".join(f"{axis} {_values([v])[1:-1]}" for axis, v in chosen.items())
        + f" (validation NDCG@10 {valid[NDCG]:.4f})"
    ]
    if "best_epoch" in fitted:
        parts.append(
            f", epoch {fitted['best_epoch']} kept of {fitted['epochs_run']} run (early stopping)"
        )
    if edges:
        parts.append(f"; on the grid's edge: {', '.join(edges)}")
    return "".join(parts) + "."


def _arm_line(arm: Mapping[str, Any]) -> str:
    s = arm["settings"]
    dp = (
        f"DP-SGD noise-multiplier {s['noise-multiplier']}, max-grad-norm "
        f"{s['max-grad-norm']}, sample-rate {s['dp-sample-rate']}, δ {s['target-delta']:g}"
        if s["dp-enabled"]
        else "no DP"
    )
    return (
        f"- {arm_label(arm)} (scenario `{arm['scenario']}`, text-tower "
        f"{s.get('text-tower', 'off')}): {s['num-rounds']} rounds, strategy {s['strategy']}, "
        f"fraction-train {s['fraction-train']}, local-epochs {s['local-epochs']}, "
        f"client-optimizer {s['client-optimizer']}, lr {s['learning-rate']}, "
        f"server-lr {s['server-learning-rate']}, dim {s['embedding-dim']}, "
        f"personalize-epochs {s['personalize-epochs']}, {dp}."
    )


def markdown_table(result: dict[str, Any]) -> str:
    """The Markdown report of a quality benchmark result (every number read from it)."""
    reference = result["reference"]
    arms = result.get("arms", {})
    lines = [
        f"# Quality benchmark: {result['dataset']}"
        + (" (centralized baselines only)" if result.get("baselines_only") else ""),
        "",
        f"Written by `fedrec bench quality` on {result['date']} "
        f"({result['machine']['cpus']} CPUs, {result['machine']['platform']}) in "
        f"{result['wall_s'] / 60:.1f} min.",
        f"Split: {result['split']}. K = {K}. Every model is fitted on the training "
        "interactions; hyperparameters are chosen on the validation items, and the table "
        "reports the test items: full ranking (against every item the user has not trained "
        "on) and sampled (against 99 seeded negatives).",
        "",
        f"Reference ({reference['rule']}): **{baseline_label(reference['baseline'])}**, "
        f"NDCG@10 {reference[NDCG]:.4f}. The `/ reference` column is each model's NDCG@10 "
        "(full ranking) over it.",
        "",
        "| model | privacy | HR@10 full | NDCG@10 full | HR@10 sampled (99 neg) "
        "| NDCG@10 sampled | coverage@10 | ILD genres@10 | mean pop. rank@10 | / reference "
        "| wall s | peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    baselines = result["baselines"]
    lines.append(_row(baseline_label("popularity"), baselines["popularity"], "none"))
    for entry in result["dp_popularity"]:
        r = entry["release"]
        privacy = f"ε={r['epsilon']:.2f}, δ={r['delta']:.1e} per {r['unit']}"
        lines.append(_row(dp_label(entry), entry, privacy))
    for key, entry in baselines.items():
        if key != "popularity":
            lines.append(_row(baseline_label(key), entry, "none"))
    for arm in arms.values():
        p = arm.get("privacy")
        privacy = f"ε={p['epsilon']:.2f}, δ={p['delta']:g} per {p['unit']}" if p else "none"
        lines.append(_row(arm_label(arm), arm, privacy))
    lines += [
        "",
        "ILD genres@10: mean pairwise cosine distance between the genre sets of a user's "
        "top 10 (0: all the same genres). Mean pop. rank@10: the mean rank of the "
        "recommended items by training popularity (1 = the most popular item; higher is "
        "more novel). Coverage@10: the share of the catalogue in at least one top 10.",
        "",
        "## Tuning (validation items, full-ranking NDCG@10)",
        "",
    ]
    lines += [
        _tuning_line(key, entry["tuning"]) for key, entry in baselines.items() if entry["tuning"]
    ]
    if result["dp_popularity"]:
        r0 = result["dp_popularity"][0]["release"]
        lines += ["", "## DP popularity", "", f"Mechanism: {r0['mechanism']}.", ""]
        for entry in result["dp_popularity"]:
            r = entry["release"]
            draws = ", ".join(f"{d[NDCG]:.4f}" for d in entry["draws"])
            lines.append(
                f"- ε = {entry['epsilon']:g} (accounted {r['epsilon']:.3f} by {r['accountant']}"
                f", δ = {r['delta']:.2e} = 1/N^1.1 for N = {r['users']} users): noise σ = "
                f"{r['noise_multiplier']:.3f} on every item's score; NDCG@10 (full) of the "
                f"{len(entry['draws'])} releases: {draws}."
            )
        lines.append("")
        lines.append(
            "Each draw is a separate release at its ε; a deployment publishes one, so the "
            "mean is the expected quality of one release, not what several would give."
        )
    if arms:
        lines += ["", "## Federated arms", ""]
        lines += [_arm_line(arm) for arm in arms.values()]
        lines.append("")
        for arm in arms.values():
            hit = arm.get("reached_0.95_reference")
            rounds = len(arm.get("curve", []))
            if hit:
                lines.append(
                    f"{arm_label(arm)}: the clients' federated NDCG@10 first reached 0.95x "
                    f"the reference ({hit['goal']:.4f}) in round {int(hit['round'])}, after "
                    f"{hit['elapsed_s'] / 60:.1f} min of federation."
                )
            elif rounds:
                best = max(p["ndcg@10_full"] for p in arm["curve"])
                lines.append(
                    f"{arm_label(arm)}: did not reach 0.95x the reference within {rounds} "
                    f"evaluated rounds (best federated NDCG@10 {best:.4f})."
                )
    return "\n".join(lines) + "\n"
