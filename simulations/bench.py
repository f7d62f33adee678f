"""Quality benchmark on one data set: popularity, centralized MF, federated models with/without DP.

The federated arms are plain MF (``text-tower = off``, the same model as the centralized
reference) and the hybrid with text towers (``text-tower = heads``, the default), each
without DP (scenario ``ml100k-nodp``) and with record-level DP-SGD (``ml100k-dp``, the demo's
settings). The model is set per arm, so a scenario's or config's own ``text-tower`` does not
decide which model an arm label names.

Every arm is evaluated on the same seeded leave-last-out split with both protocols (full
ranking; the test item among 99 sampled negatives). Wall time and the peak resident memory
of the whole process tree (the driver plus Ray's workers) are measured while each arm runs.
Results go to ``docs/benchmarks/<name>.json`` and a Markdown table beside it.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from fedrec.shared.baselines import popularity_score_fn
from fedrec.shared.checkpoint import load_checkpoint
from fedrec.shared.config import resolve_config
from fedrec.shared.data import load_split
from fedrec.shared.evaluation import evaluate_model
from fedrec.simulations.central import run_central
from fedrec.simulations.evaluate import evaluate_run
from fedrec.simulations.runner import simulate
from fedrec.simulations.scenarios import load_scenario

logger = logging.getLogger(__name__)

K = 10


class PeakMemory:
    """Samples the RSS of this process and all its descendants; keeps the maximum."""

    def __init__(self, interval_s: float = 0.2) -> None:
        self.interval_s = interval_s
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        me = psutil.Process()
        total = 0
        for proc in [me, *me.children(recursive=True)]:
            try:
                total += proc.memory_info().rss
            except psutil.Error:
                continue
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_bytes = max(self.peak_bytes, self._sample())
            self._stop.wait(self.interval_s)

    def __enter__(self) -> PeakMemory:
        self.peak_bytes = self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _measure(name: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    logger.info("benchmark arm: %s", name)
    t0 = time.perf_counter()
    with PeakMemory() as mem:
        out = fn()
    out["wall_s"] = time.perf_counter() - t0
    out["peak_rss_mib"] = mem.peak_bytes / 2**20
    logger.info("%s: %.1fs, peak %.0f MiB", name, out["wall_s"], out["peak_rss_mib"])
    return out


# Federated models the benchmark can train: label -> text-tower setting.
MODELS = {"MF": "off", "hybrid": "heads"}


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
) -> dict[str, Any]:
    """Run the arms and write ``<output_dir>/<name>.json`` and ``.md``.

    ``models`` picks the federated models (keys of :data:`MODELS`); each runs without and
    with DP. The federated/centralized ratio is taken for federated MF without DP when it
    runs (the same model as the reference), and is also given for every no-DP arm.
    """
    check_models(models)
    overrides = dict(overrides or {})
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    base = {**overrides, "output-dir": str(runs_dir), "resume": False}
    cfg = resolve_config({}, base)
    _, split = load_split(cfg.data)
    arms: dict[str, dict[str, Any]] = {}

    arms["popularity"] = _measure(
        "popularity",
        lambda: {
            "metrics": evaluate_model(popularity_score_fn(split), split, k=K, seed=cfg.data.seed)
        },
    )

    def central() -> dict[str, Any]:
        res = run_central({**base, "run-name": f"bench-central-{stamp}"}, epochs=central_epochs)
        return {"metrics": res["test"], "best_epoch": res["best_epoch"]}

    arms["centralized MF"] = _measure("centralized MF", central)

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

    for scenario, dp in (("ml100k-nodp", "no DP"), ("ml100k-dp", "DP")):
        for model in models:
            label = f"federated {model} ({dp})"
            arms[label] = _measure(label, federated(scenario, model))

    central_ndcg = arms["centralized MF"]["metrics"][f"ndcg@{K}_full"]
    reference_arm = f"federated {'MF' if 'MF' in models else models[0]} (no DP)"
    fed_ndcg = arms[reference_arm]["metrics"][f"ndcg@{K}_full"]
    for arm in arms.values():
        if "curve" in arm:
            arm["reached_0.95_central"] = _first_reaching(arm["curve"], 0.95 * central_ndcg)
    result = {
        "benchmark": name,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "dataset": cfg.data.dataset,
        "split": "leave-last-out by timestamp per user (test), previous item (validation)",
        "settings": cfg.to_run_config() | {"central-epochs (max, early stopping)": central_epochs},
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "arms": arms,
        "federated_over_central_ndcg@10_full": fed_ndcg / central_ndcg if central_ndcg else None,
        "federated_over_central_arm": reference_arm,
        "over_central_ndcg@10_full": {
            label: arm["metrics"][f"ndcg@{K}_full"] / central_ndcg
            for label, arm in arms.items()
            if label.startswith("federated") and central_ndcg
        },
    }
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / f"{name}.json").write_text(json.dumps(result, indent=2, default=str))
    write_report(result, output_dir, name)
    return result


def write_report(result: dict[str, Any], output_dir: Path, name: str) -> None:
    """The Markdown table and plot of a quality result (also re-rendered from its JSON)."""
    plot_curves(result, output_dir / f"{name}.png")
    (output_dir / f"{name}.md").write_text(markdown_table(result) + f"\n![curves]({name}.png)\n")


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


def plot_curves(result: dict[str, Any], path: Path) -> None:
    """Federated NDCG@10 per round against the centralized and popularity levels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    arms = result["arms"]
    for name, arm in arms.items():
        if arm.get("curve"):
            xs = [p["elapsed_s"] / 60 for p in arm["curve"]]
            sampled = any(p["eval_users"] < arm["curve"][-1]["eval_users"] for p in arm["curve"])
            label = f"{name}{' (some rounds: sampled clients only)' if sampled else ''}"
            ax.plot(xs, [p["ndcg@10_full"] for p in arm["curve"]], "o-", label=label)
    for name, style in (("centralized MF", "--"), ("popularity", ":")):
        level = arms[name]["metrics"][f"ndcg@{K}_full"]
        ax.axhline(level, linestyle=style, color="k", label=f"{name} (test, {level:.4f})")
    ax.set(
        xlabel="federation wall time (min)",
        ylabel="NDCG@10, full ranking (clients' evaluation)",
        title=f"{result['dataset']}: federated rounds vs references",
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown_table(result: dict[str, Any]) -> str:
    """A short Markdown report of a quality benchmark result."""
    lines = [
        f"# Quality benchmark: {result['dataset']}",
        "",
        f"Written by `fedrec bench quality` on {result['date']} "
        f"({result['machine']['cpus']} CPUs, {result['machine']['platform']}).",
        f"Split: {result['split']}. K = {K}. Centralized MF: Adam, early stopping on "
        "validation NDCG@10, same model and loss (BPR, uniform negatives).",
        "",
    ]
    for name, arm in result["arms"].items():
        if "settings" not in arm:
            continue
        s = arm["settings"]
        dp = (
            f"DP-SGD noise-multiplier {s['noise-multiplier']}, max-grad-norm "
            f"{s['max-grad-norm']}, sample-rate {s['dp-sample-rate']}, δ {s['target-delta']:g}"
            if s["dp-enabled"]
            else "no DP"
        )
        lines.append(
            f"- {name} (scenario `{arm['scenario']}`, text-tower {s.get('text-tower', 'off')}): "
            f"{s['num-rounds']} rounds, "
            f"strategy {s['strategy']}, fraction-train {s['fraction-train']}, "
            f"local-epochs {s['local-epochs']}, client-optimizer {s['client-optimizer']}, "
            f"lr {s['learning-rate']}, server-lr {s['server-learning-rate']}, "
            f"dim {s['embedding-dim']}, personalize-epochs {s['personalize-epochs']}, {dp}."
        )
    lines += [
        "",
        "| model | HR@10 full | NDCG@10 full | HR@10 sampled (99 neg) | NDCG@10 sampled "
        "| coverage@10 "
        "| privacy | wall s | peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, arm in result["arms"].items():
        m = arm["metrics"]
        p = arm.get("privacy")
        priv = f"ε={p['epsilon']:.2f}, δ={p['delta']:g} per {p['unit']}" if p else "none"
        lines.append(
            f"| {name} | {m[f'hr@{K}_full']:.4f} | {m[f'ndcg@{K}_full']:.4f} | "
            f"{m[f'hr@{K}_sampled']:.4f} | {m[f'ndcg@{K}_sampled']:.4f} | "
            f"{m[f'coverage@{K}']:.3f} | "
            f"{priv} | {arm['wall_s']:.0f} | {arm['peak_rss_mib']:.0f} |"
        )
    ratio = result.get("federated_over_central_ndcg@10_full")
    if ratio is not None:
        arm_name = result.get("federated_over_central_arm", "federated MF (no DP)")
        lines += ["", f"{arm_name} / centralized NDCG@10 (full ranking): **{ratio:.3f}**."]
        others = {
            k: v for k, v in result.get("over_central_ndcg@10_full", {}).items() if k != arm_name
        }
        if others:
            lines.append(
                "Other arms / centralized: "
                + ", ".join(f"{k} {v:.3f}" for k, v in others.items())
                + "."
            )
    for name, arm in result["arms"].items():
        if "curve" not in arm:
            continue
        hit = arm.get("reached_0.95_central")
        rounds = len(arm["curve"])
        if hit:
            lines.append(
                f"{name}: the clients' federated NDCG@10 first reached 0.95x centralized "
                f"({hit['goal']:.4f}) in round {int(hit['round'])}, after "
                f"{hit['elapsed_s'] / 60:.1f} min of federation."
            )
        elif rounds:
            best = max(p["ndcg@10_full"] for p in arm["curve"])
            lines.append(
                f"{name}: did not reach 0.95x centralized within {rounds} evaluated rounds "
                f"(best federated NDCG@10 {best:.4f})."
            )
    return "\n".join(lines) + "\n"
