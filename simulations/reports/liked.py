"""The report of ``fedrec bench cold-start --liked`` (:mod:`fedrec.simulations.bench_liked`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from fedrec.simulations.result_keys import LIKED_DRAWS as DRAWS
from fedrec.simulations.result_keys import LIKED_REFERENCES as REFERENCES
from fedrec.simulations.result_keys import K

# The protocol whose top-10 lists the report shows (every protocol's are in the result).
LISTS_OF = ("first", 3)
_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


def _count(n: int) -> str:
    """A small count in words, as prose writes it."""
    return _WORDS[n] if n < len(_WORDS) else str(n)


def _either(values: list[int]) -> str:
    """``"1, 3 or 5"``."""
    listed = [str(v) for v in values]
    return listed[0] if len(listed) == 1 else f"{', '.join(listed[:-1])} or {listed[-1]}"


def _mean_over_seeds(result: dict[str, Any], row: str, arm: str | None, key: str) -> float:
    values = []
    for seed in result["per_seed"]:
        cell = seed["rows"][row]
        values.append((cell[arm] if arm else cell)[key])
    return float(np.mean(values))


def markdown(result: dict[str, Any], name: str) -> str:
    """The report: served vs references per protocol, the paired goal, liked + text, lists."""
    n = f"ndcg@{K}"
    g = result["private_guarantee"]
    privacy = (
        f"user-level ({g['epsilon']:.2f}, {g['delta']:.2g})-DP, placement {g['placement']}"
        if g
        else "no DP"
    )
    users = sum(s["users"] for s in result["per_seed"])
    sel = result["selection"]
    models, given = list(result["models"]), result["given"]
    lines = [
        "# New users from a few liked items (served default model)",
        "",
        f"{result['dataset']}, written by `fedrec bench cold-start --liked` at {result['date']}. "
        f"Seeds {', '.join(map(str, result['seeds']))}: each holds out "
        f"{result['held_out_fraction']:.0%} of the users from the release ({users} evaluated "
        f"users in all) and answers them from {_either(given)} of their liked items (rated "
        f">= {result['liked_rating']:g}): the first they rated, or drawn at random; their other "
        f"items are the targets (the {max(given)} given are excluded). Models: **private "
        "default** (the co-occurrence release at "
        f"{privacy}) and **non-private** (the exact sum, EASE item model). References are "
        "centralized on the same warm users' training items and not private; item-kNN + log "
        "popularity takes the best of its weights "
        f"({'/'.join(f'{w:g}' for w in result['knn_pop_weights'])}) on the evaluated users "
        "themselves (optimistic). NDCG@10, mean over seeds; x = ratio to the best reference.",
        "",
        "| draw | liked | popularity | item-kNN | EASE | item-kNN + log pop. | best reference "
        "| private default | x best | non-private | x best |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for draw in DRAWS:
        for k in result["given"]:
            row = f"{draw}/{k}"
            ref = {
                r: float(np.mean([s["rows"][row]["references"][r][n] for s in result["per_seed"]]))
                for r in REFERENCES
            }
            best = float(
                np.mean(
                    [
                        s["rows"][row]["references"][s["rows"][row]["best_reference"]][n]
                        for s in result["per_seed"]
                    ]
                )
            )
            priv = _mean_over_seeds(result, row, "private default", n)
            nonp = _mean_over_seeds(result, row, "non-private", n)
            lines.append(
                f"| {draw} | {k} | {ref['popularity']:.4f} | {ref['item-kNN']:.4f} "
                f"| {ref['EASE']:.4f} | {ref['item-kNN + log popularity']:.4f} | {best:.4f} "
                f"| {priv:.4f} | {priv / best:.2f}x | {nonp:.4f} | {nonp / best:.2f}x |"
            )
    lines += [
        "",
        "## Against the goal (served >= 1.00x the best reference)",
        "",
        "Served minus the best reference, user by user, pooled over the seeds (95% Student's t "
        "interval); and served minus popularity:",
        "",
        "| draw | liked | model | - best reference | - popularity | met |",
        "|---|---|---|---|---|---|",
    ]
    paired = result["paired"]
    met_all = True
    for draw in DRAWS:
        for k in result["given"]:
            for model in models:
                best = paired[f"{draw}/{k}/{model}/vs best"]
                pop = paired[f"{draw}/{k}/{model}/vs popularity"]
                met = best["mean"] >= 0
                met_all &= met
                lines.append(
                    f"| {draw} | {k} | {model} | {_ci(best)} | {_ci(pop)} "
                    f"| {'yes' if met else 'no'} |"
                )
    lines += [
        "",
        f"**Goal: {'met' if met_all else 'NOT met'}** on every protocol and model "
        "(a mean at or above the best reference; where its interval spans zero the two are "
        "not distinguishable on these users).",
        "",
        "## The served weight",
        "",
        "`cooccurrence-liked-similarity` scores a new user's items as log(release popularity) + "
        "w · (summed cosine of the liked items' factors). Chosen on seed "
        f"{result['dev_seed']}'s held-out users (never evaluated above): the best mean NDCG@10 "
        f"({_count(len(DRAWS) * len(given))} protocols, both models) among the weights whose "
        "answers to the fixed liked-item "
        "profiles (`shared/evaluation/relevance.py`: Star Wars, animation, horror, romance) look "
        f"right for both models (every profile's top 10 at least {sel['min_share']:.0%} in its "
        f"genres, {sel['mean_share']:.0%} on average)"
        + ("" if sel["any_looks_right"] else "; none did, so the most relevant was taken")
        + f": **w = {sel['chosen']:g}**. NDCG measures how much of a user's later history the "
        "list finds, and that history is mostly the popular films everyone watches; the "
        "profiles are what a person reads. Where the two pull apart, the weight that reads "
        "right wins.",
        "",
        "| w | private NDCG | private genre shares | non-private NDCG | non-private genre "
        "shares | looks right |",
        "|---|---|---|---|---|---|",
    ]
    for row in sel["tried"]:
        cells = []
        for model in models:
            shares = " / ".join(f"{v:.1f}" for v in row[model]["shares"].values())
            cells += [f"{row[model]['mean']:.4f}", shares]
        lines.append(
            f"| {row['weight']:g} | {' | '.join(cells)} | {'yes' if row['looks_right'] else 'no'} |"
        )
    both = result["both_given"]
    lines += [
        "",
        f"## Liked items and text together ({both} first liked items; the text is the user's "
        'genres, e.g. "I enjoy Action, Sci-Fi and Thriller movies.")',
        "",
        "| model | text only | liked only | both | both - liked | both - text |",
        "|---|---|---|---|---|---|",
    ]
    for model in models:
        text = _mean_over_seeds(result, f"text/{model}", None, n)
        liked = _mean_over_seeds(result, f"first/{both}", model, n)
        together = _mean_over_seeds(result, f"both/{model}", None, n)
        lines.append(
            f"| {model} | {text:.4f} | {liked:.4f} | {together:.4f} "
            f"| {_ci(paired[f'both/{model}/vs liked'])} | {_ci(paired[f'both/{model}/vs text'])} |"
        )
    lines += [
        "",
        f"## The lists ({LISTS_OF[1]} liked, {LISTS_OF[0]} draw)",
        "",
        "ILD: mean pairwise genre distance in a top 10. Popularity rank: 1 is the most watched. "
        "Franchise: the most items of one franchise in a top 10 (titles grouped before a colon, "
        "without sequel numbers), mean over users and the worst user.",
        "",
        "| arm | NDCG@10 | ILD genres | mean popularity rank | franchise mean | franchise max |",
        "|---|---|---|---|---|---|",
    ]
    row = f"{LISTS_OF[0]}/{LISTS_OF[1]}"
    arms: list[tuple[str, str, str | None]] = [("popularity", f"{LISTS_OF[0]}/popularity", None)]
    arms += [(r, row, r) for r in REFERENCES[1:]]
    arms += [(m, row, m) for m in models]
    for label, key, arm in arms:
        vals = {}
        for metric in (n, f"ild_genres@{K}", f"mean_pop_rank@{K}", "largest_franchise_mean"):
            vals[metric] = float(
                np.mean([_cell(s["rows"][key], arm)[metric] for s in result["per_seed"]])
            )
        worst = max(_cell(s["rows"][key], arm)["largest_franchise_max"] for s in result["per_seed"])
        lines.append(
            f"| {label} | {vals[n]:.4f} | {vals[f'ild_genres@{K}']:.3f} "
            f"| {vals[f'mean_pop_rank@{K}']:.0f} | {vals['largest_franchise_mean']:.2f} | {worst} |"
        )
    lines += ["", "Regenerate: `fedrec bench cold-start --liked`.", ""]
    return "\n".join(lines)


def _cell(row: dict[str, Any], arm: str | None) -> dict[str, Any]:
    if arm is None:
        return row
    if arm in row:
        return row[arm]  # type: ignore[no-any-return]
    return row["references"][arm]  # type: ignore[no-any-return]


def _ci(d: dict[str, float]) -> str:
    return f"{d['mean']:+.4f} ({d['low']:+.4f} to {d['high']:+.4f})"
