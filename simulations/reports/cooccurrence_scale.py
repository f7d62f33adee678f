"""The co-occurrence scale report: utility at fixed ε as the (modelled) federation grows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fedrec.simulations.result_keys import NDCG, dataset_label


def plot(result: dict[str, Any], path: Path) -> None:
    """NDCG@10 over popularity against the federation's size, one line per ε."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pop, goal = result["popularity"][NDCG], float(result["goal_ratio"])
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for eps in sorted({r["epsilon"] for r in result["rows"]}):
        rows = [r for r in result["rows"] if r["epsilon"] == eps]
        ax.plot(
            [r["users"] for r in rows],
            [float(np.mean(r["ndcg_runs"])) / pop for r in rows],
            "o-",
            label=f"ε = {eps:g}",
        )
    ax.axhline(1.0, color="black", lw=1, label="popularity")
    ax.axhline(goal, color="tab:red", lw=1, ls="--", label=f"{goal}x popularity")
    ax.set_xscale("log")
    data = dataset_label(result["dataset"])
    ax.set_xlabel(f"users in the federation ({data}-like, by the stated model)")
    ax.set_ylabel("test NDCG@10 / popularity")
    ax.set_title(f"Private co-occurrence model as the federation grows ({result['placement']})")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown(result: dict[str, Any], name: str) -> str:
    """The report of ``result`` saved as ``<name>``: one row per (ε, federation size)."""
    pop, goal = result["popularity"][NDCG], float(result["goal_ratio"])
    data = dataset_label(result["dataset"])
    lines = [
        "# Private co-occurrence model: utility at fixed ε as the federation grows",
        "",
        f"{result['dataset']}, {result['date']}, placement {result['placement']}, "
        f"{result['draws']} noise draws per point, the served default (co-occurrence and the "
        "public-text part). **Model of a larger federation** "
        f"(an extrapolation, not a measurement on more users): m times "
        f"{result['users']} users who look like {data}'s, so the exact co-occurrence sum is m "
        "times the observed one, with the noise the placement adds for that many clients at "
        f"δ = 1/(mN)^1.1; evaluated on {data}'s own test users (full ranking). Popularity "
        f"NDCG@10 {pop:.4f}.",
        "",
        "| ε | users | noise std on the sum | NDCG@10 (mean) | × popularity |",
        "|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        mean = float(np.mean(r["ndcg_runs"]))
        lines.append(
            f"| {r['epsilon']:g} | {r['users']:,} | {r['noise_std']:.3f} | {mean:.4f} "
            f"| {mean / pop:.2f}x |"
        )
    lines += ["", f"![scale]({name}.png)", ""]
    for eps in sorted({r["epsilon"] for r in result["rows"]}):
        hit = next(
            (
                r
                for r in result["rows"]
                if r["epsilon"] == eps and float(np.mean(r["ndcg_runs"])) / pop >= goal
            ),
            None,
        )
        lines.append(
            f"- ε = {eps:g}: "
            + (
                f"{goal}x popularity first reached at {hit['users']:,} users."
                if hit
                else f"{goal}x popularity not reached up to the largest federation here."
            )
        )
    lines += [
        "",
        f"Regenerate: `fedrec bench cooccurrence --scale` (placement {result['placement']}).",
        "",
    ]
    return "\n".join(lines)
