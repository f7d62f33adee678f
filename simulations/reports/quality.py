"""The quality report: every model against the best centralized baseline, and the curves."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fedrec.simulations.result_keys import NDCG, K

# How the report names the centralized baselines (the result keys them by id).
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
        if len(values) > 1 and chosen[axis] in ({min(values), max(values)} - {0})
    ]
    valid = next(t["valid"] for t in tuning["trials"] if t["params"] == chosen)
    fitted = tuning.get("fitted") or {}
    parts = [
        f"- {baseline_label(key)}: "
        + "; ".join(f"{axis} ∈ {_values(values)}" for axis, values in tuning["grid"].items())
        + f" ({len(tuning['trials'])} fits). Chosen: "
        + ", ".join(f"{axis} {_values([v])[1:-1]}" for axis, v in chosen.items())
        + f" (validation NDCG@{K} {valid[NDCG]:.4f})"
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
        f"DP-SGD dp-noise-multiplier {s['dp-noise-multiplier']}, dp-max-grad-norm "
        f"{s['dp-max-grad-norm']}, sample-rate {s['dp-sample-rate']}, δ {s['dp-delta']:g}"
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
    k, negatives, reach = result["k"], result["sampled_negatives"], result["reach_fraction"]
    lines = [
        f"# Quality benchmark: {result['dataset']}"
        + (" (centralized baselines only)" if result.get("baselines_only") else ""),
        "",
        f"Written by `fedrec bench quality` on {result['date']} "
        f"({result['machine']['cpus']} CPUs, {result['machine']['platform']}) in "
        f"{result['wall_s'] / 60:.1f} min.",
        f"Split: {result['split']}. K = {k}. Every model is fitted on the training "
        "interactions; hyperparameters are chosen on the validation items, and the table "
        "reports the test items: full ranking (against every item the user has not trained "
        f"on) and sampled (against {negatives} seeded negatives).",
        "",
        f"Reference ({reference['rule']}): **{baseline_label(reference['baseline'])}**, "
        f"NDCG@{k} {reference[NDCG]:.4f}. The `/ reference` column is each model's NDCG@{k} "
        "(full ranking) over it.",
        "",
        f"| model | privacy | HR@{k} full | NDCG@{k} full | HR@{k} sampled ({negatives} neg) "
        f"| NDCG@{k} sampled | coverage@{k} | ILD genres@{k} | mean pop. rank@{k} | / reference "
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
        f"ILD genres@{k}: mean pairwise cosine distance between the genre sets of a user's "
        f"top {k} (0: all the same genres). Mean pop. rank@{k}: the mean rank of the "
        "recommended items by training popularity (1 = the most popular item; higher is "
        f"more novel). Coverage@{k}: the share of the catalogue in at least one top {k}.",
        "",
        f"## Tuning (validation items, full-ranking NDCG@{k})",
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
                f"{r['noise_multiplier']:.3f} on every item's score; NDCG@{k} (full) of the "
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
            hit = arm.get(f"reached_{reach:g}_reference")
            rounds = len(arm.get("curve", []))
            if hit:
                lines.append(
                    f"{arm_label(arm)}: the clients' federated NDCG@{k} first reached {reach:g}x "
                    f"the reference ({hit['goal']:.4f}) in round {int(hit['round'])}, after "
                    f"{hit['elapsed_s'] / 60:.1f} min of federation."
                )
            elif rounds:
                best = max(p["ndcg@10_full"] for p in arm["curve"])
                lines.append(
                    f"{arm_label(arm)}: did not reach {reach:g}x the reference within {rounds} "
                    f"evaluated rounds (best federated NDCG@{k} {best:.4f})."
                )
    return "\n".join(lines) + "\n"


def _has_curves(result: dict[str, Any]) -> bool:
    return any(arm.get("curve") for arm in result.get("arms", {}).values())


def markdown(result: dict[str, Any], name: str) -> str:
    """The report of ``result`` saved as ``<name>`` (the plot only with federated arms)."""
    if "reference" not in result:
        raise ValueError(
            f"{name}.json predates the centralized baselines (it has no 'reference'); "
            "run `fedrec bench quality` again to measure them"
        )
    text = markdown_table(result)
    if _has_curves(result):
        text += f"\n![curves]({name}.png)\n"
    return text


def plot(result: dict[str, Any], path: Path) -> None:
    """The learning curves, when there are federated arms to draw."""
    if _has_curves(result):
        plot_curves(result, path)
