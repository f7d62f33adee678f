"""The cold-start report (``fedrec bench cold-start``): result -> Markdown tables.

The measurement is :mod:`fedrec.simulations.bench_coldstart`; rows are found by their
structured keys and labelled by :mod:`fedrec.simulations.coldstart_rows`, and every number
in the prose is read from the result (its protocol: k, the liked items given, the goals).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from fedrec.shared.evaluation import paired_difference, standard_error
from fedrec.simulations.coldstart_rows import (
    MODEL_LABELS,
    RANDOM,
    REPEAT_COLUMNS,
    K,
    Row,
    best_reference,
    find_or_none,
    is_text_map,
    item_label,
    reference_base,
    reference_label,
    user_label,
)


def _times(value: float, baseline: float) -> str:
    """``"1.50x"``, or ``"-"`` where the baseline is zero (no ratio to give)."""
    return f"{value / baseline:.2f}x" if baseline > 0 else "-"


def _repeat_lines(
    repeats: list[dict[str, float]], vary: str, *, given: int, k: int = K
) -> list[str]:
    """Each training run's headline numbers, their mean and its standard error."""
    if len(repeats) < 2:
        return []
    # The references depend on the split alone: repeats with fresh noise share theirs.
    same_split = vary == "dp-noise"
    keys = [
        c
        for c in REPEAT_COLUMNS
        if c in repeats[0] and not (same_split and c.startswith("best_reference"))
    ]
    how = (
        "same split and seeds, fresh DP noise"
        if vary == "dp-noise"
        else "one seed each: its own held-out users and items, partitions and initialisation"
    )
    titles = [REPEAT_COLUMNS[c][0].format(given=given) for c in keys]
    lines = [
        "",
        f"## Repeated training ({len(repeats)} runs: {how})",
        "",
        f"Run 1 is the one reported above. NDCG@{k}; the last row is the mean over runs ± its "
        "standard error (sd / √runs).",
        "",
        "| run | " + " | ".join(titles) + " |",
        "| --- |" + " ---: |" * len(keys),
    ]
    for r, row in enumerate(repeats, start=1):
        run = f"{r} (seed {int(row['seed'])})" if vary == "seed" and "seed" in row else str(r)
        lines.append(f"| {run} | " + " | ".join(_fmt(row[c], c) for c in keys) + " |")
    stats = []
    for c in keys:
        v = np.array([row[c] for row in repeats])
        se = _fmt(standard_error(v), c).lstrip("+")
        stats.append(f"{_fmt(v.mean(), c)} ± {se}")
    lines.append("| mean | " + " | ".join(stats) + " |")
    d = paired_difference(
        [row["warm_hybrid"] for row in repeats], [row["warm_mf"] for row in repeats]
    )
    verdict = _verdict(d.low, d.high)
    lines += [
        "",
        f"Warm users, hybrid - MF only over the {d.n} runs: {d.mean:+.4f} NDCG@{k} (95% interval "
        f"{d.low:+.4f} to {d.high:+.4f}, Student's t): {verdict} at that level.",
    ]
    return lines


def _weight_lines(users: list[Row], protocol: dict[str, Any]) -> list[str]:
    """The sweep of the served fold-in weight (absent for DP models, which skip fold-in)."""
    sweep = [row for row in users if row["method"] == "fold-in-weight"]
    weights = sorted({row["weight"] for row in sweep})
    if not weights:
        return []
    k, given = protocol["k"], protocol["given"]
    pop = _row(users, method="popularity")[f"ndcg@{k}"]
    served = protocol.get("fold_in_weight")
    lines = [
        "",
        "### The served fold-in weight",
        "",
        "A new user's folded-in vector u scores item i as w · q_i·u + b_i: w = 0 ranks by the "
        "item bias alone (the model's learned popularity), w = 1 by the fold-in as it comes "
        f"out. The service uses w = {served:g}, chosen from this table on seed "
        f"{protocol.get('fold_in_weight_chosen_on_seed')}'s held-out users; runs with other "
        f"seeds (repeats below) are users it was not chosen on. NDCG@{k} x popularity:",
        "",
        "| fold-in weight | " + " | ".join(f"{n} liked" for n in given) + " |",
        "| --- |" + " ---: |" * len(given),
    ]
    for w in weights:
        cells = [_times(_row(sweep, weight=w, given=n)[f"ndcg@{k}"], pop) for n in given]
        label = f"{w:g} (served)" if served is not None and w == served else f"{w:g}"
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def _row(rows: list[Row], **identity: Any) -> Row:
    """The row with ``identity`` (the first, where a result holds several)."""
    row = find_or_none(rows, **identity)
    if row is None:
        raise KeyError(f"no row {identity} in the result")
    return row


def _paired_lines(paired: list[Row], *, k: int) -> list[str]:
    """Each served answer minus popularity, user by user, with its 95% interval."""
    if not paired:
        return []
    lines = [
        "",
        f"Served answers - popularity, paired user by user (NDCG@{k}, 95% Student's t interval "
        "over these users):",
        "",
    ]
    for d in paired:
        verdict = _verdict(d["low"], d["high"])
        lines.append(
            f"- {user_label(d)}: {d['mean']:+.4f} ({d['low']:+.4f} to {d['high']:+.4f}, "
            f"{int(d['n_users'])} users): {verdict}"
        )
    return lines


def _unseen_seed_lines(
    repeats: list[dict[str, float]], chosen_on: int | None, *, liked: int
) -> list[str]:
    """New users over the runs whose held-out users the served weight was not chosen on."""
    unseen = [row for row in repeats if chosen_on is not None and int(row["seed"]) != chosen_on]
    if not unseen:
        return []
    seeds = ", ".join(str(int(row["seed"])) for row in unseen)
    mean = float(np.mean([row["new_user_liked"] for row in unseen]))
    return [
        "",
        f"On the held-out users the served fold-in weight was not chosen on (seeds {seeds}), "
        f"new users from {liked} liked items: {mean:.2f}x popularity on average.",
    ]


def _goal_lines(
    users: list[Row],
    refs: list[Row],
    repeats: list[dict[str, float]],
    protocol: dict[str, Any],
) -> list[str]:
    """The served new-user answers against the goals, beside the best centralized reference."""
    k, goals = protocol["k"], protocol["goals"]
    n = goals["liked"]["given"]
    pop = _row(users, method="popularity")[f"ndcg@{k}"]
    served3 = find_or_none(users, method="served", given=n)
    text = find_or_none(users, method="served", text=True)
    if served3 is None or text is None or pop <= 0:
        return []
    lines = [
        "",
        "### Against the goals",
        "",
        "The goals set for new users, the served answers (this run, and the mean over the "
        "repeated runs below where there are any) and the best centralized reference on the "
        "same users and protocol:",
        "",
    ]
    best_liked, best_text = best_reference(refs, given=n), best_reference(refs, text=True)
    for what, goal, served, kind, best in (
        (f"{n} liked items", goals["liked"]["ratio"], served3, "liked", best_liked),
        ("text alone", goals["text"]["ratio"], text, "text", best_text),
    ):
        ratio = served[f"ndcg@{k}"] / pop
        parts = [f"served {ratio:.2f}x popularity"]
        key = f"new_user_{kind}"  # the repeats' columns (REPEAT_COLUMNS)
        if len(repeats) > 1:
            parts.append(f"{np.mean([r[key] for r in repeats]):.2f}x over {len(repeats)} runs")
        if best is not None:
            ref_key = f"best_reference_{kind}"
            over = list({r.get("seed"): r[ref_key] for r in repeats if ref_key in r}.values())
            mean = f", {np.mean(over):.2f}x over the runs' seeds" if len(over) > 1 else ""
            parts.append(
                f"best centralized reference {best[1]:.2f}x{mean} ({reference_label(best[0])})"
            )
        lines.append(
            f"- From {what}, goal {goal:g}x: {'; '.join(parts)}. "
            f"{'Met' if round(ratio, 9) >= goal else 'Not met'}."
        )
    drawn = best_reference(refs, draw=RANDOM)
    if drawn is not None:
        lines.append(
            f"- With {protocol['random_liked_given']} liked items drawn at random instead of the "
            "first (a friendlier choice): "
            f"best centralized reference {drawn[1]:.2f}x ({reference_label(drawn[0])})."
        )
    return lines


def _verdict(low: float, high: float) -> str:
    """What a 95% interval of a difference ("hybrid - MF only", "served - popularity") says."""
    return "worse" if high < 0 else "better" if low > 0 else "not different"


def _fmt(value: float, key: str) -> str:
    """A repeats cell as its column's kind writes it (:data:`REPEAT_COLUMNS`)."""
    kind = REPEAT_COLUMNS[key][1]
    if kind == "ratio":
        return f"{value:.2f}x"
    if kind == "difference":
        return f"{value if round(value, 4) else 0.0:+.4f}"  # no "-0.0000"
    return f"{value:.4f}"


def _privacy_lines(privacy: dict[str, Any]) -> list[str]:
    """What each model's training spent (nothing for reports from before it was recorded)."""
    if not privacy:
        return []
    lines = ["", "## Privacy spent in training", ""]
    for model, p in privacy.items():
        parts = []
        if p.get("dp_enabled"):
            parts.append(
                f"record-level DP-SGD, ε = {p['epsilon_max']:.3g} per interaction (maximum "
                f"over clients), δ = {p['delta']:g}; σ {p['noise_multiplier']:g}, clip "
                f"{p['max_grad_norm']:g}, sample rate {p['dp_sample_rate']:g}"
            )
        if p.get("user_level"):
            u = p["user_level"]
            parts.append(
                f"user-level ({u['placement']}), ε = {u['epsilon']:.3g} per user, "
                f"δ = {u['delta']:.3g}"
            )
        lines.append(f"- {MODEL_LABELS[model]}: " + ("; ".join(parts) if parts else "no DP"))
    lines.append(
        "- The serving-time inputs of a new user (liked items, text) are not training data "
        "and are not covered by these guarantees."
    )
    return lines


def coldstart_markdown(result: dict[str, Any]) -> str:
    """The report as Markdown tables (ratios against popularity / random)."""
    if "rows" not in result["user_cold_start"]:
        raise ValueError(
            "this cold-start result keys its rows by display labels (written before results "
            "had structured rows); re-run `fedrec bench cold-start` to render it"
        )
    p = result["protocol"]
    k = p["k"]
    lines = [
        f"# Cold start ({p['dataset']})",
        "",
        f"Written by `fedrec bench cold-start` at {result['created_at']}. {p['cold_users']} users "
        f"and {p['cold_items']} items ({p['held_out_fraction']:.0%}) held out of training; "
        f"both models federated for {p['rounds']} rounds ({p['loop']}), settings "
        f"`{json.dumps(p['train_settings'])}`. Metrics at k={p['k']}. See "
        "simulations/bench_coldstart.py for the protocol.",
        "",
        "## New users",
        "",
        f"| method | NDCG@{k} | HR@{k} | x popularity (NDCG) | users |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    new_users = result["user_cold_start"]
    users: list[Row] = new_users["rows"]
    repeats, vary = result.get("repeats") or [], result.get("repeats_vary", "dp-noise")
    pop = _row(users, method="popularity")[f"ndcg@{k}"]
    for m in users:
        if m["method"] == "fold-in-weight":  # the sweep has its own table
            continue
        lines.append(
            f"| {user_label(m)} | {m[f'ndcg@{k}']:.4f} | {m[f'hr@{k}']:.4f} | "
            f"{_times(m[f'ndcg@{k}'], pop)} | {int(m['n_users'])} |"
        )
    lines += _paired_lines(new_users.get("vs_popularity") or [], k=k)
    lines += _weight_lines(users, p)
    refs: list[Row] = result.get("user_cold_start_centralized_references") or []
    if refs:
        lines += [
            "",
            "### Centralized references (not private: they read every warm user's history)",
            "",
            "Same users and liked items; item-kNN and EASE use the co-occurrence matrix of all "
            "warm users, which a federated server never sees. '+ log popularity' rows score "
            "log(1 + count) + λ · similarity and report the best λ on these very users (an "
            "optimistic bound); the genre row's similarity is how many of the text's genres an "
            f"item has. The '{p['random_liked_given']} liked at random' rows give "
            f"{p['random_liked_given']} of "
            f"{max(p['given'])} liked items drawn at random "
            "instead of the first ones (mostly the popular films every new user was asked to "
            "rate), against popularity on that draw. The ceiling rows rank a random half of "
            "each user's warm items from the other half, against popularity on that half.",
            "",
            f"| method | NDCG@{k} | HR@{k} | x popularity (NDCG) | users |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for m in refs:
            base = reference_base(m, refs)[f"ndcg@{k}"]
            lines.append(
                f"| {reference_label(m)} | {m[f'ndcg@{k}']:.4f} | {m[f'hr@{k}']:.4f} | "
                f"{_times(m[f'ndcg@{k}'], base)} | {int(m['n_users'])} |"
            )
    lines += _goal_lines(users, refs, repeats, p)
    items: list[Row] = result["item_cold_start"]
    rnd = _row(items, method="random")[f"ndcg@{k}"]
    lines += [
        "",
        "## New items (ranked among the held-out items only)",
        "",
        f"| method | NDCG@{k} | HR@{k} | x random (NDCG) | users |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for m in items:
        lines.append(
            f"| {item_label(m)} | {m[f'ndcg@{k}']:.4f} | {m[f'hr@{k}']:.4f} | "
            f"{_times(m[f'ndcg@{k}'], rnd)} | {int(m['n_users'])} |"
        )
    if any(is_text_map(m) for m in items):
        lines += [
            "",
            "Text map: a ridge regression from the items' frozen text embeddings to the "
            "model's trained item vectors and biases, fitted by the server on the global model "
            "(post-processing: no privacy cost); what the service uses to add an item from its "
            "text. Item head: the hybrid's trained head alone.",
        ]
    lines += [
        "",
        "## Warm users (personalised, full ranking)",
        "",
        f"| model | NDCG@{k} | HR@{k} | users |",
        "| --- | ---: | ---: | ---: |",
    ]
    for model, m in result["warm_users"].items():
        lines.append(
            f"| {MODEL_LABELS[model]} | {m[f'ndcg@{k}_full']:.4f} | {m[f'hr@{k}_full']:.4f} | "
            f"{int(m['n_users'])} |"
        )
    diff = result.get("warm_users_paired")
    if diff:
        verdict = _verdict(diff["low"], diff["high"])
        lines += [
            "",
            f"Hybrid - MF only, paired user by user: {diff['mean']:+.4f} NDCG@{k} "
            f"(SE {diff['se']:.4f}, 95% interval {diff['low']:+.4f} to {diff['high']:+.4f}, "
            f"{diff['n_users']} users): {verdict} at that level. The interval covers the "
            "choice of users only, not the training's randomness (DP noise above all): "
            "compare repeated runs for that.",
        ]
    liked = p["goals"]["liked"]["given"]
    lines += _repeat_lines(repeats, vary, given=liked, k=k)
    if vary == "seed" and any(m["method"] == "fold-in-weight" for m in users):
        lines += _unseen_seed_lines(repeats, p.get("fold_in_weight_chosen_on_seed"), liked=liked)
    lines += _privacy_lines(result.get("privacy") or {})
    lines += ["", "## Time", ""]
    lines += [f"- {what}: {v:.1f}" for what, v in result["timings"].items()]
    lines += [f"- {note}" for note in result.get("notes", [])]
    return "\n".join(lines) + "\n"


def markdown(result: dict[str, Any], name: str) -> str:
    """The report of ``result`` saved as ``<name>``."""
    return coldstart_markdown(result)
