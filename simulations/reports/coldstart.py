"""The cold-start report (``fedrec bench cold-start``): result -> Markdown tables.

The measurement is :mod:`fedrec.simulations.bench_coldstart`; the rows are found by the
names of :mod:`fedrec.simulations.coldstart_rows`, and every number in the prose is read
from the result (its protocol: k, the liked items given, the goals).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from fedrec.shared.evaluation import paired_difference, standard_error
from fedrec.simulations.coldstart_rows import (
    BEST_REF,
    PAIRED_ROW,
    RANDOM_LIKED,
    SERVED_ROW,
    SERVED_TEXT_ROW,
    WEIGHT_ROW,
    K,
    best_reference,
    reference_base,
)


def _times(value: float, baseline: float) -> str:
    """``"1.50x"``, or ``"-"`` where the baseline is zero (no ratio to give)."""
    return f"{value / baseline:.2f}x" if baseline > 0 else "-"


def _repeat_lines(repeats: list[dict[str, float]], vary: str, *, k: int = K) -> list[str]:
    """Each training run's headline numbers, their mean and its standard error."""
    if len(repeats) < 2:
        return []
    # The references depend on the split alone: repeats with fresh noise share theirs.
    same_split = vary == "dp-noise"
    keys = [c for c in repeats[0] if c != "seed" and not (same_split and c.startswith(BEST_REF))]
    how = (
        "same split and seeds, fresh DP noise"
        if vary == "dp-noise"
        else "one seed each: its own held-out users and items, partitions and initialisation"
    )
    lines = [
        "",
        f"## Repeated training ({len(repeats)} runs: {how})",
        "",
        f"Run 1 is the one reported above. NDCG@{k}; the last row is the mean over runs ± its "
        "standard error (sd / √runs).",
        "",
        "| run | " + " | ".join(keys) + " |",
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
        [row["warm hybrid"] for row in repeats], [row["warm MF only"] for row in repeats]
    )
    verdict = _verdict(d.low, d.high)
    lines += [
        "",
        f"Warm users, hybrid - MF only over the {d.n} runs: {d.mean:+.4f} NDCG@{k} (95% interval "
        f"{d.low:+.4f} to {d.high:+.4f}, Student's t): {verdict} at that level.",
    ]
    return lines


def _weight_lines(users: dict[str, dict[str, float]], protocol: dict[str, Any]) -> list[str]:
    """The sweep of the served fold-in weight (absent for DP models, which skip fold-in)."""
    rows = sorted(
        {m[len(WEIGHT_ROW) :].split(" (")[0] for m in users if m.startswith(WEIGHT_ROW)}, key=float
    )
    if not rows:
        return []
    k, given = protocol["k"], protocol["given"]
    pop = users["popularity"][f"ndcg@{k}"]
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
    for w in rows:
        cells = [_times(users[f"{WEIGHT_ROW}{w} ({n} liked)"][f"ndcg@{k}"], pop) for n in given]
        label = f"{w} (served)" if served is not None and float(w) == served else w
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def _paired_lines(users: dict[str, dict[str, float]], *, k: int) -> list[str]:
    """Each served answer minus popularity, user by user, with its 95% interval."""
    rows = [(m[len(PAIRED_ROW) :], d) for m, d in users.items() if m.startswith(PAIRED_ROW)]
    if not rows:
        return []
    lines = [
        "",
        f"Served answers - popularity, paired user by user (NDCG@{k}, 95% Student's t interval "
        "over these users):",
        "",
    ]
    for name, d in rows:
        verdict = _verdict(d["low"], d["high"])
        lines.append(
            f"- {name}: {d['mean']:+.4f} ({d['low']:+.4f} to {d['high']:+.4f}, "
            f"{int(d['n_users'])} users): {verdict}"
        )
    return lines


def _unseen_seed_lines(
    repeats: list[dict[str, float]], chosen_on: int | None, *, liked: int
) -> list[str]:
    """New users over the runs whose held-out users the served weight was not chosen on."""
    key = f"new user, {liked} liked (x popularity)"  # the repeats' column
    unseen = [row for row in repeats if chosen_on is not None and int(row["seed"]) != chosen_on]
    if not unseen:
        return []
    seeds = ", ".join(str(int(row["seed"])) for row in unseen)
    mean = float(np.mean([row[key] for row in unseen]))
    return [
        "",
        f"On the held-out users the served fold-in weight was not chosen on (seeds {seeds}), "
        f"new users from {liked} liked items: {mean:.2f}x popularity on average.",
    ]


def _goal_lines(
    users: dict[str, dict[str, float]],
    refs: dict[str, dict[str, float]],
    repeats: list[dict[str, float]],
    protocol: dict[str, Any],
) -> list[str]:
    """The served new-user answers against the goals, beside the best centralized reference."""
    k, goals = protocol["k"], protocol["goals"]
    n = goals["liked"]["given"]
    pop = users["popularity"][f"ndcg@{k}"]
    served3 = next(
        (v for m, v in users.items() if m.startswith(SERVED_ROW) and m.endswith(f"({n} liked)")),
        None,
    )
    text = users.get(SERVED_TEXT_ROW)
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
    for what, goal, served, given in (
        (f"{n} liked items", goals["liked"]["ratio"], served3, f"{n} liked"),
        ("text alone", goals["text"]["ratio"], text, "text"),
    ):
        ratio = served[f"ndcg@{k}"] / pop
        parts = [f"served {ratio:.2f}x popularity"]
        key = f"new user, {given} (x popularity)"  # the repeats' columns (_repeat_summary)
        if len(repeats) > 1:
            parts.append(f"{np.mean([r[key] for r in repeats]):.2f}x over {len(repeats)} runs")
        best = best_reference(refs, f"({given})")
        if best is not None:
            ref_key = f"{BEST_REF}{given} (x popularity)"
            over = list({r.get("seed"): r[ref_key] for r in repeats if ref_key in r}.values())
            mean = f", {np.mean(over):.2f}x over the runs' seeds" if len(over) > 1 else ""
            parts.append(f"best centralized reference {best[1]:.2f}x{mean} ({best[0]})")
        lines.append(
            f"- From {what}, goal {goal:g}x: {'; '.join(parts)}. "
            f"{'Met' if round(ratio, 9) >= goal else 'Not met'}."
        )
    drawn = best_reference(refs, prefix=RANDOM_LIKED)
    if drawn is not None:
        lines.append(
            f"- With {protocol['random_liked_given']} liked items drawn at random instead of the "
            "first (a friendlier choice): "
            f"best centralized reference {drawn[1]:.2f}x ({drawn[0]})."
        )
    return lines


def _verdict(low: float, high: float) -> str:
    """What a 95% interval of a difference ("hybrid - MF only", "served - popularity") says."""
    return "worse" if high < 0 else "better" if low > 0 else "not different"


def _fmt(value: float, key: str) -> str:
    if key.endswith(")"):
        return f"{value:.2f}x"
    if "-" in key:
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
        lines.append(f"- {model}: " + ("; ".join(parts) if parts else "no DP"))
    lines.append(
        "- The serving-time inputs of a new user (liked items, text) are not training data "
        "and are not covered by these guarantees."
    )
    return lines


def coldstart_markdown(result: dict[str, Any]) -> str:
    """The report as Markdown tables (ratios against popularity / random)."""
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
    users = result["user_cold_start"]
    repeats, vary = result.get("repeats") or [], result.get("repeats_vary", "dp-noise")
    pop = users["popularity"][f"ndcg@{k}"]
    for method, m in users.items():
        if method.startswith(("_", WEIGHT_ROW)):
            continue
        lines.append(
            f"| {method} | {m[f'ndcg@{k}']:.4f} | {m[f'hr@{k}']:.4f} | "
            f"{_times(m[f'ndcg@{k}'], pop)} | {int(m['n_users'])} |"
        )
    lines += _paired_lines(users, k=k)
    lines += _weight_lines(users, p)
    refs = result.get("user_cold_start_centralized_references")
    if refs:
        lines += [
            "",
            "### Centralized references (not private: they read every warm user's history)",
            "",
            "Same users and liked items; item-kNN and EASE use the co-occurrence matrix of all "
            "warm users, which a federated server never sees. '+ log popularity' rows score "
            "log(1 + count) + λ · similarity and report the best λ on these very users (an "
            "optimistic bound); the genre row's similarity is how many of the text's genres an "
            f"item has. The '{RANDOM_LIKED}' rows give {p['random_liked_given']} of "
            f"{max(p['given'])} liked items drawn at random "
            "instead of the first ones (mostly the popular films every new user was asked to "
            "rate), against popularity on that draw. The ceiling rows rank a random half of "
            "each user's warm items from the other half, against popularity on that half.",
            "",
            f"| method | NDCG@{k} | HR@{k} | x popularity (NDCG) | users |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for method, m in refs.items():
            base = refs[reference_base(method, refs)][f"ndcg@{k}"]
            lines.append(
                f"| {method} | {m[f'ndcg@{k}']:.4f} | {m[f'hr@{k}']:.4f} | "
                f"{_times(m[f'ndcg@{k}'], base)} | {int(m['n_users'])} |"
            )
    lines += _goal_lines(users, refs or {}, repeats, p)
    items = result["item_cold_start"]
    rnd = items["random"][f"ndcg@{k}"]
    lines += [
        "",
        "## New items (ranked among the held-out items only)",
        "",
        f"| method | NDCG@{k} | HR@{k} | x random (NDCG) | users |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for method, m in items.items():
        lines.append(
            f"| {method} | {m[f'ndcg@{k}']:.4f} | {m[f'hr@{k}']:.4f} | "
            f"{_times(m[f'ndcg@{k}'], rnd)} | {int(m['n_users'])} |"
        )
    if any("text map" in method for method in items):
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
            f"| {model} | {m[f'ndcg@{k}_full']:.4f} | {m[f'hr@{k}_full']:.4f} | "
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
    lines += _repeat_lines(repeats, vary, k=k)
    if vary == "seed" and any(m.startswith(WEIGHT_ROW) for m in users):
        lines += _unseen_seed_lines(repeats, p.get("fold_in_weight_chosen_on_seed"), liked=liked)
    lines += _privacy_lines(result.get("privacy") or {})
    lines += ["", "## Time", ""]
    lines += [f"- {what}: {v:.1f}" for what, v in result["timings"].items()]
    lines += [f"- {note}" for note in result.get("notes", [])]
    return "\n".join(lines) + "\n"


def markdown(result: dict[str, Any], name: str) -> str:
    """The report of ``result`` saved as ``<name>``."""
    return coldstart_markdown(result)
