"""The free-text intents report (``fedrec bench cold-start --intents``): result -> Markdown.

The measurement is :mod:`fedrec.simulations.bench_intents`; every number here is read from
its result.
"""

from __future__ import annotations

from typing import Any

from fedrec.simulations.result_keys import dataset_label

SHOWN = 8  # intents whose top 5 the report prints, the first of the set


def _selection_lines(result: dict[str, Any]) -> list[str]:
    """How the weights were chosen, and every weight tried."""
    sel = result["selection"]
    items = "new_items_bar" in sel  # absent from older results
    lines = [
        f"Chosen on `{result['dev_query_set']}` (development intents, not reported above)"
        + (
            f", `{result['dev_new_items']}` "
            "(development new items) and validation items: among the weights that find at "
            f"least {sel['new_items_bar']:.0%} of the development new items by their paraphrase"
            + ("" if sel["new_items_bar_met"] else " (none did, so all were kept)")
            + ", the best development precision among those whose validation genre-text NDCG "
            "is at least that of the model's own popularity "
            if items
            else " and validation items: the best development precision among the weights "
            "whose validation genre-text NDCG is at least that of the model's own popularity "
        )
        + f"({sel['popularity_valid_ndcg']:.4f}"
        + ("" if sel["constraint_met"] else "; no weight met it, so the best NDCG was taken")
        + f"). Chosen similarity {sel['chosen']['similarity']:g}, popularity "
        f"{sel['chosen']['prior']:g}; the model's configured defaults are "
        f"{result['configured_weights'][0]:g} / {result['configured_weights'][1]:g}. Chosen "
        f"once on {dataset_label(result['dataset'])}; like the model's other defaults, the "
        "choice is not in the privacy accounting.",
        "",
        "| similarity | popularity | dev precision | validation genre-text NDCG |"
        + (" dev new items found |" if items else ""),
        "|---|---|---|---|" + ("---|" if items else ""),
    ]
    for row in sel["tried"]:
        lines.append(
            f"| {row['similarity']:g} | {row['prior']:g} | {row['dev_precision']:.3f} "
            f"| {row['valid_genre_text_ndcg']:.4f} |"
            + (f" {row['dev_new_items_found']:.0%} |" if items else "")
        )
    return lines


def _new_item_lines(result: dict[str, Any]) -> list[str]:
    """Each added item's rank for its paraphrase (absent from older results)."""
    rows = result.get("new_items")
    if not rows:
        return []
    k = result["k"]
    found = sum(r["rank"] <= k for r in rows)
    lines = [
        "## New items found by a paraphrase of their description",
        "",
        f"Each item of `{result['new_items_file']}` (made-up films) is added from its title, "
        "genres and description as the admin route does, then queried with a paraphrase "
        f"(other words for the same film). Found in the top {k}: **{found} of {len(rows)}** "
        f"(goal: every one).",
        "",
        "| item | paraphrase | rank | the answer's top 3 |",
        "|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['title']} | {r['query']} | {r['rank']} | {'; '.join(r['top3'])} |")
    return [*lines, ""]


def markdown(result: dict[str, Any], name: str) -> str:
    """The report: the arms on the query set, the selection, answers a person can read."""
    arms = result["arms"]
    k = result["k"]
    p = f"precision@{k}"
    served, content = arms["served"], arms["content match"]
    pop_ndcg = arms["popularity"]["genre_text_ndcg"]
    private_ndcg = arms["model's popularity"]["genre_text_ndcg"]
    guarantee = result["user_privacy"]
    privacy = (
        "no DP"
        if not guarantee
        else f"user-level ({guarantee['epsilon']:.2f}, {guarantee['delta']:.2g})-DP, "
        f"placement {guarantee['placement']}"
    )
    goal = result["goal"]["precision"]
    met = served[p] >= goal and served[p] >= content[p] and served["genre_text_ndcg"] >= pop_ndcg
    franchises = f"largest_franchise@{k}" in served  # absent from older results
    lines = [
        "# Free-text queries: do the answers match what was asked?",
        "",
        f"{result['dataset']}, {result['items']} items, {result['date']}. Model: "
        f"{result['model']} (the private co-occurrence model, {privacy}). Query set: "
        f"`{result['query_set']}` ({served['intents']} intents, each with a relevance rule on "
        "genres, year or title words, written before any answer was seen).",
        "",
        f"| arm | relevance precision@{k} | mean popularity rank@{k} | ILD genres@{k} "
        f"| genre-text NDCG@{k} ({result['users']} users) |"
        + (" largest franchise |" if franchises else ""),
        "|---|---|---|---|---|" + ("---|" if franchises else ""),
    ]
    for arm, m in arms.items():
        lines.append(
            f"| {arm} | {m[p]:.3f} | {m[f'mean_pop_rank@{k}']:.0f} | {m[f'ild_genres@{k}']:.3f} "
            f"| {m['genre_text_ndcg']:.4f} |"
            + (f" {m[f'largest_franchise@{k}']} |" if franchises else "")
        )
    lines += [
        "",
        f"**Goal** (served precision@{k} >= {goal:g} and >= the content match's, genre-text NDCG "
        f">= popularity's): **{'met' if met else 'NOT met'}** — {served[p]:.3f} vs content "
        f"{content[p]:.3f}; NDCG {served['genre_text_ndcg']:.4f} vs popularity {pop_ndcg:.4f} "
        f"(the model's own released popularity: {private_ndcg:.4f}).",
        "",
        f"Precision is the relevant items in the top {k} over min({k}, relevant items in the "
        "catalogue). Mean popularity rank: 1 is the most watched item (higher is more obscure). "
        "ILD: mean pairwise genre distance within a list."
        + (
            " Largest franchise: the most items of one franchise (titles grouped before a "
            "colon, without sequel numbers) in any one answer."
            if franchises
            else ""
        ),
        "",
        "## Weights of the served reading",
        "",
        *_selection_lines(result),
    ]
    lines += ["", "## Answers to read", ""]
    titles = result["titles"]
    for row_s, row_c in list(zip(served["rows"], content["rows"], strict=True))[:SHOWN]:
        lines += [
            f"**{row_s['query']}** (served {row_s['precision']:.1f}, content match "
            f"{row_c['precision']:.1f})",
            "",
            "- served: " + "; ".join(titles[str(i)] for i in row_s["top"][:5]),
            "- content match: " + "; ".join(titles[str(i)] for i in row_c["top"][:5]),
            "",
        ]
    lines += _new_item_lines(result)
    lines += [
        "Regenerate: `fedrec bench cold-start --intents`.",
        "",
    ]
    return "\n".join(lines)
