"""The co-occurrence report: NDCG@10 against ε beside popularity and the best baseline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fedrec.simulations.result_keys import NDCG, dataset_label, mean_interval


def plot(result: dict[str, Any], path: Path) -> None:
    """NDCG@10 against ε for both arms, DP popularity, popularity, no DP, the best baseline."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5))
    xs = [p["epsilon"] for p in result["points"]]
    for arm, style, label in (
        ("with-text", "o-", "co-occurrence + public text (served default)"),
        ("collaborative", "s--", "co-occurrence alone"),
    ):
        runs = [p["arms"][arm]["ndcg_runs"] for p in result["points"]]
        means = [float(np.mean(r)) for r in runs]
        errs = [mean_interval(r)["high"] - mean_interval(r)["mean"] for r in runs]
        line = ax.errorbar(
            xs, means, yerr=errs, fmt=style, capsize=3, label=f"{label}, {result['placement']}"
        )
        ax.axhline(
            result["no_dp"]["arms"][arm]["metrics"][NDCG],
            ls=":",
            lw=1,
            color=line[0].get_color(),
            label=f"{label.split(' (')[0]}, no DP",
        )
    dp = result["dp_popularity"]
    ax.plot(
        [d["epsilon"] for d in dp], [d[NDCG] for d in dp], "v-", color="gray", label="DP popularity"
    )
    ax.axhline(result["popularity"][NDCG], color="black", lw=1, label="popularity")
    b = result["baselines"]
    ax.axhline(
        b["best_ndcg"], color="tab:red", lw=1, label=f"best centralized ({b['best']}, no DP)"
    )
    ax.set_xscale("log", base=2)
    ax.set_xlabel("user-level ε (δ = 1/N^1.1)")
    ax.set_ylabel("test NDCG@10 (full ranking)")
    ax.set_title(f"Private co-occurrence model, {result['dataset']} ({result['users']} users)")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown_report(result: dict[str, Any], png: str) -> str:
    """The report: the ε curve, the goal, relevance of new-user answers."""
    s, b = result["settings"], result["baselines"]
    pop = result["popularity"][NDCG]
    best = b["best_ndcg"]
    lines = [
        "# Private co-occurrence model: NDCG@10 against ε",
        "",
        f"{result['dataset']} ({result['users']} users, {result['items']} items), "
        f"leave-last-out test split, full ranking, {result['date']}. Each user releases its "
        "item co-occurrence once under user-level DP (unit: everything one user "
        f"contributed; δ = 1/N^1.1); noise placement **{result['placement']}**"
        + (
            " (each client adds its share; the server gets only the SecAgg+ sum)"
            if result["placement"] == "secagg"
            else ""
        )
        + f"; {result['draws']} fresh releases per ε; rank {s['cooccurrence-rank']}, "
        f"content weight {s['cooccurrence-content-weight']}, fade "
        f"{s['cooccurrence-content-fade']}. Users rank on their devices (their items' mean "
        "factor); the evaluation pools them.",
        "",
        f"Popularity {pop:.4f}; best centralized baseline {b['best']} {best:.4f} "
        f"(no DP, tuned on validation; from {b['source']}, {b['date']}).",
        "",
        "| ε | arm | NDCG@10 (mean of draws) | 95% interval | × popularity | × best "
        "centralized | DP popularity at ε | HR@10 | NDCG@10 (99 sampled) | coverage@10 "
        "| ILD genres@10 | mean pop. rank@10 | new-user genre relevance |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    dp_at = {d["epsilon"]: d[NDCG] for d in result["dp_popularity"]}
    rows = [(None, result["no_dp"]), *((p["epsilon"], p) for p in result["points"])]
    for eps, point in rows:
        for arm in point["arms"]:
            a = point["arms"][arm]
            m = a["metrics"]
            ci = mean_interval(a["ndcg_runs"])
            interval = "-" if len(a["ndcg_runs"]) < 2 else f"{ci['low']:.4f} – {ci['high']:.4f}"
            rel = _relevance_cell(a["relevance"])
            dp = f"{dp_at[eps]:.4f}" if eps in dp_at else "-"
            lines.append(
                f"| {'no DP' if eps is None else f'{eps:g}'} | {arm} | {m[NDCG]:.4f} | {interval} "
                f"| {m[NDCG] / pop:.2f}x | {m[NDCG] / best:.2f}x | {dp} | {m['hr@10_full']:.4f} "
                f"| {m['ndcg@10_sampled']:.4f} | {m['coverage@10']:.3f} "
                f"| {_cell(m, 'ild_genres@10', '.3f')} | {_cell(m, 'mean_pop_rank@10', '.0f')} "
                f"| {rel} |"
            )
    goal = result["goal"]
    g, goal_eps = goal["best"], goal["epsilon"]
    pop_relevance = float(np.mean(list(result["popularity"]["relevance"].values())))
    epsilons = ", ".join(f"{p['epsilon']:g}" for p in result["points"])
    lines += [
        "",
        f"![ε–utility curve]({png})",
        "",
        f"**Goal** ({goal['rule']}): "
        + (
            f"no point at ε <= {goal_eps:g} with secagg or local noise."
            if g is None
            else f"{'met' if g['met'] else 'NOT met'} — best at ε = {g['epsilon']:g} ({g['arm']}): "
            f"{g['ratio']['mean']:.2f}x popularity, 95% interval {g['ratio']['low']:.2f}x – "
            f"{g['ratio']['high']:.2f}x over {int(g['ratio']['n'])} draws."
        ),
        "",
        *(
            [*_exact_ease_lines(result["exact_ease"], best, b["best"], pop), ""]
            if "exact_ease" in result
            else []
        ),
        "**New-user relevance**: for each profile (three liked items, below) the share of "
        "the top 10 that has one of the profile's genres, averaged over profiles; "
        f"popularity's list scores {pop_relevance:.2f}.",
        "",
        "| profile | liked items | genres counted | popularity | no DP, with text | ε "
        f"{goal_eps:g}, with text | ε {goal_eps:g}, co-occurrence alone |",
        "|---|---|---|---|---|---|---|",
    ]
    at_goal = next((p for p in result["points"] if p["epsilon"] == goal_eps), None)
    for key, prof in result["profiles"].items():
        if key not in result["popularity"]["relevance"]:
            continue  # a catalogue without this profile's films
        cells = [
            f"{result['popularity']['relevance'][key]:.2f}",
            f"{result['no_dp']['arms']['with-text']['relevance'][key]:.2f}",
        ]
        if at_goal is not None:
            cells += [
                f"{at_goal['arms']['with-text']['relevance'][key]:.2f}",
                f"{at_goal['arms']['collaborative']['relevance'][key]:.2f}",
            ]
        else:
            cells += ["-", "-"]
        lines.append(
            f"| {key} | {', '.join(prof['liked'])} | {', '.join(prof['genres'])} | "
            + " | ".join(cells)
            + " |"
        )
    lines += ["", *_cost_lines(result), "", *_defaults_lines(result)]
    lines += [
        "",
        f"Regenerate: `fedrec bench cooccurrence` (ε {epsilons}, "
        f"{result['draws']} draws, placement {result['placement']}); after `fedrec bench quality "
        "--baselines-only`.",
        "",
    ]
    return "\n".join(lines)


def _cell(metrics: dict[str, float], key: str, fmt: str) -> str:
    return format(metrics[key], fmt) if key in metrics else "-"


def _cost_lines(result: dict[str, Any]) -> list[str]:
    """What each point cost to measure, and what a client sends and a device downloads."""
    lines = []
    if "bytes_per_client" in result:
        lines.append(
            f"**Sizes**: each client sends one vector of {result['bytes_per_client']:,} bytes "
            "(the upper triangle of its co-occurrence, float32, before SecAgg+'s encoding: "
            "secagg.md has the bytes on the wire); a device downloads an item model of "
            + ", ".join(f"{v:,} bytes ({arm})" for arm, v in result["item_model_bytes"].items())
            + " to rank on its own (item factors and biases, float32)."
        )
    timed = [p for p in result["points"] if "wall_s" in p]
    if timed:
        lines += [
            "",
            "| ε | survivors the noise is sized for | wall time, all draws | peak RSS |",
            "|---|---|---|---|",
        ]
        for p in timed:
            lines.append(
                f"| {p['epsilon']:g} | {p['plan'].get('survivors') or '-'} "
                f"| {p['wall_s']:.0f} s | {p['peak_rss_mib']:,.0f} MiB |"
            )
    return lines


def _defaults_lines(result: dict[str, Any]) -> list[str]:
    """Where rank, content weight and fade came from, and what that choice costs."""
    s, tuning = result["settings"], result.get("defaults_tuning")
    chosen_looking = (
        "Rank, content weight and fade are fixed defaults chosen once on "
        f"{dataset_label(result['defaults_chosen_on'])} (looking at "
        "validation and test NDCG and at these profiles), not tuned per run: their choice "
        "is not in the privacy accounting, and the test figures of the with-text arm are "
        "optimistic by that choice."
    )
    if tuning is None:
        return [
            chosen_looking + " On validation a larger content weight scored higher; on test it "
            "scored lower, which is why the content part fades with a user's history."
        ]
    chosen = tuning["chosen"]
    if all(float(s[k]) == float(v) for k, v in chosen.items()):
        return [
            "Rank, content weight and fade are the defaults `fedrec bench cooccurrence "
            f"--tune` chose on held-out items, never a test item ({tuning['source']}, "
            f"{tuning['date']}, {tuning['draws']} draws at ε {tuning['epsilon']:g}); the test "
            "figures above are their first look at test. The choice read the users' held-out "
            "items, which the privacy accounting does not cover; a deployment that re-tunes "
            "on its own users must account for it."
        ]
    return [
        chosen_looking
        + " `fedrec bench cooccurrence --tune`, which never looks at a test item, chose "
        + ", ".join(f"{k} = {v:g}" for k, v in chosen.items())
        + f" instead ({tuning['source']}, {tuning['date']}); this run kept "
        + ", ".join(f"{k} = {s[k]}" for k in chosen)
        + (f": {result['defaults_note']}" if result.get("defaults_note") else ".")
    ]


def _relevance_cell(relevance: dict[str, float]) -> str:
    """The mean genre share over the profiles, or "-" where the catalogue has none of them."""
    return f"{np.mean(list(relevance.values())):.2f}" if relevance else "-"


def _exact_ease_lines(ease: dict[str, Any], best: float, best_name: str, pop: float) -> list[str]:
    """The no-DP goal: the exact sum's EASE item model against the best centralized one."""
    chosen = ease["chosen"]
    grid = ", ".join(
        f"{k} ∈ {{{', '.join(f'{v:g}' for v in vs)}}}" for k, vs in ease["grid"].items()
    )
    top = max(ease["arms"].values(), key=lambda a: a["metrics"][NDCG])["metrics"][NDCG]
    lines = [
        "**No DP** (`user-dp = off`, `cooccurrence-item-model = ease`): the exact sum, as "
        "SecAgg+ computes it without noise, made into EASE's item model with dropout "
        f"emphasis; {grid} tuned on validation (no privacy to account without DP), chosen "
        f"λ = {chosen['cooccurrence-l2']:g}, p = {chosen['cooccurrence-dropout']:g}. "
        f"Goal (best federated model >= 1.00x the best centralized baseline, {best_name} "
        f"{best:.4f}): **{'met' if top >= best else 'NOT met'}**, {top / best:.3f}x.",
        "",
        "| arm | NDCG@10 | × best centralized | × popularity | HR@10 | NDCG@10 (99 sampled) "
        "| coverage@10 | ILD genres@10 | mean pop. rank@10 | new-user genre relevance |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for arm, a in ease["arms"].items():
        m = a["metrics"]
        rel = _relevance_cell(a["relevance"])
        lines.append(
            f"| {arm} | {m[NDCG]:.4f} | {m[NDCG] / best:.3f}x | {m[NDCG] / pop:.2f}x "
            f"| {m['hr@10_full']:.4f} | {m['ndcg@10_sampled']:.4f} | {m['coverage@10']:.3f} "
            f"| {m.get('ild_genres@10', float('nan')):.3f} "
            f"| {m.get('mean_pop_rank@10', float('nan')):.0f} | {rel} |"
        )
    paired = ease.get("paired")
    if paired is not None:
        lines += [
            "",
            f"Paired per test user against {paired['baseline']} refitted with its chosen "
            f"{paired['params']} (NDCG@10 {paired['baseline_ndcg']:.4f} in this refit): "
            + "; ".join(
                f"{arm} {paired[arm]['mean']:+.4f} NDCG (95% interval {paired[arm]['low']:+.4f} "
                f"to {paired[arm]['high']:+.4f}, {paired[arm]['n']} users)"
                for arm in ease["arms"]
            )
            + ". No noise and one split: the uncertainty is the test users', and an interval "
            "that spans zero says the two are not told apart on this data.",
        ]
    return lines


def markdown(result: dict[str, Any], name: str) -> str:
    """The report of ``result`` saved as ``<name>``."""
    return markdown_report(result, f"{name}.png")
