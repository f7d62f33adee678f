"""The privacy report: NDCG@10 against ε per level and placement, and the goal."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fedrec.simulations.result_keys import NDCG as METRIC
from fedrec.simulations.result_keys import PLACEMENT_LEVELS, K, point_at


def plot_curve(result: dict[str, Any], path: Path) -> None:
    """NDCG@10 against ε (log x) for both levels; ∞ as its own marker and line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5.8))
    finite: list[float] = []
    for level, style, label in (
        ("record", "o-", "record-level DP-SGD (unit: one interaction)"),
        ("user", "s-", "user-level DP, central (unit: one user)"),
        ("secagg", "D--", "user-level DP, SecAgg+ noise shares (unit: one user)"),
        ("local", "v-", "user-level DP, local (unit: one user)"),
    ):
        points = sorted(
            (result.get(level) or {}).get("points", []), key=lambda p: p["calibration"]["target"]
        )
        if not points:
            continue
        xs = [float(p["calibration"]["target"]) for p in points]
        ys = [float(p["metrics"][METRIC]) for p in points]
        errs = [float(p.get("ndcg_standard_error") or 0.0) for p in points]
        line = ax.errorbar(xs, ys, yerr=errs, fmt=style, capsize=3, label=label)
        singles = [(x, y) for x, p in zip(xs, points, strict=True) for y in p.get("ndcg_runs", [])]
        if any(len(p.get("ndcg_runs", [])) > 1 for p in points):
            ax.plot(
                [x for x, _ in singles],
                [y for _, y in singles],
                style[0],
                color=line[0].get_color(),
                alpha=0.35,
                markersize=4,
                label=f"{label.split(' (')[0]}: single runs",
            )
        finite += xs
    scaled = result["user"].get("scale") or []
    if scaled:
        ys = [float(p["metrics"][METRIC]) for p in scaled]
        at = float(scaled[0]["scale"]["goal_epsilon"])
        ax.plot(
            [at] * len(ys),
            ys,
            "^",
            color="tab:green",
            label=f"user level, noise of m x {result['users']} users at ε = {at:g} (extrapolation)",
        )
        for p, y in zip(scaled, ys, strict=True):
            ax.annotate(f" m = {p['scale']['multiplier']:g}", (at, y), fontsize=7, va="center")
        finite.append(at)
    hi = max(finite) if finite else 8.0
    x_inf = hi * 4
    ref = float(result["no_dp"]["metrics"][METRIC])
    ax.errorbar(
        [x_inf],
        [ref],
        yerr=[float(result["no_dp"].get("ndcg_standard_error") or 0.0)],
        fmt="k*",
        markersize=12,
        capsize=3,
        label=f"ε = ∞ (no DP): {ref:.4f}",
    )
    ax.axhline(ref, color="k", linewidth=0.8)
    ax.axvline(math.sqrt(hi * x_inf), color="lightgrey", linewidth=6, zorder=0)
    ratio = float(result["goal"]["ratio_required"])
    ax.axhline(ref * ratio, color="k", linestyle="--", linewidth=0.8, label=f"{ratio:g} x no DP")
    pop = float(result["popularity"][METRIC])
    ax.axhline(pop, color="grey", linestyle=":", label=f"popularity: {pop:.4f}")
    ax.set_xscale("log")
    ticks = sorted(set(finite)) or [hi]
    ax.set_xticks([*ticks, x_inf])
    ax.set_xticklabels([f"{t:g}" for t in ticks] + ["∞"])
    ax.minorticks_off()
    ax.set(
        xlabel=f"ε (record level: per interaction, δ = {result['record']['delta']:g}; "
        f"user level: per user, δ = {result['user']['delta']:.2g})",
        ylabel="NDCG@10, full ranking (personalised)",
        title=f"{result['dataset']}: ε vs utility, {result['rounds']} rounds, "
        f"{result['clients_per_round']} clients/round",
    )
    ax.xaxis.label.set_fontsize(8)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _settings_line(s: dict[str, Any]) -> str:
    keys = (
        "fraction-train",
        "local-epochs",
        "client-optimizer",
        "learning-rate",
        "server-learning-rate",
        "strategy",
        "embedding-dim",
        "personalize-epochs",
        "text-tower",
    )
    return ", ".join(f"{k} {s[k]}" for k in keys if k in s)


def markdown_report(result: dict[str, Any], png: str) -> str:
    """The report: what, where, how; the table; whether the goal is met; caveats."""
    rec, usr = result["record"], result["user"]
    ref = result["no_dp"]
    ref_ndcg = float(ref["metrics"][METRIC])
    machine = result["machine"]
    lines = [
        f"# ε–utility curve: {result['dataset']}",
        "",
        f"Written by `fedrec bench privacy` on {result['date']} ({machine['cpus']} CPUs, "
        f"{machine['platform']}, torch {machine['torch']} with {machine['torch_threads']} "
        f"thread) in {result.get('total_s', 0) / 60:.0f} min"
        + ("" if result.get("complete") else " -- **incomplete run**")
        + ".",
        "",
        f"What: NDCG@10 under full ranking of the federated MF model after {result['rounds']} "
        f"rounds, against the privacy budget ε, for record-level DP-SGD and for user-level DP "
        f"({_placements_text(result)}); ε = ∞ is the same federation without DP. Evaluation: "
        f"{result['evaluation']} ({int(ref['metrics']['n_users'])} users). DP noise is drawn "
        "from OS entropy, so every run differs: a point is one run unless marked 'mean of n "
        "runs'.",
        "",
        (
            "Training of the no-DP and user-level points (the record-level points change the "
            "client optimizer, below)"
            if result["record"].get("settings") and rec["points"]
            else "Training, the same for every point"
        )
        + ": the tuned non-private settings of the "
        f"`{result['scenario']}` scenario ({_settings_line(result['settings'])}), from the "
        f"same seeded initial model, {result['clients_per_round']} of {result['users']} clients "
        f"every round (one client per user), in the {result['loop']}. The text towers are off, as "
        "in quality.md, to keep the runs cheap and comparable to it.",
        "",
        f"- **User level, central** (unit: everything one user contributed): the server clips "
        f"each client's whole update to C = {usr['clip']:.3g} ({usr['clip_source']}), adds "
        f"N(0, (σC)²) to the sum once and divides by the {result['clients_per_round']} clients "
        f"sampled; q = {usr['sample_rate']:.3g}, δ = {_user_delta_source(result)} = "
        f"{usr['delta']:.3g} "
        f"(N = {result['users']}), accountant {usr['accountant']}. σ is calibrated for the "
        "target ε over the rounds with the project's user-level accountant "
        "(`shared/privacy/accounting.py`); the ε column is the run's own report. The noise on "
        "the averaged update has std σC/K per coordinate; the server applies the average "
        f"with learning rate {result['settings'].get('server-learning-rate')}, noise "
        "included.",
        "",
    ]
    if not result["user"]["points"]:
        lines.pop(-2)  # the user-level bullet
    if result["record"]["points"]:
        lines.insert(len(lines) - (2 if result["user"]["points"] else 1), _record_bullet(result))
    lines.insert(
        len(lines) - 1,
        f"- Arguments: rounds {result['rounds']}, epsilons "
        f"{', '.join(f'{e:g}' for e in result.get('epsilons', []))}, levels "
        f"{', '.join(result.get('levels', []))}, repeats {result.get('repeats', 1)}, "
        f"goal-repeats {result.get('goal_repeats', 0)}, scale "
        + (", ".join(f"{p['scale']['multiplier']:g}" for p in usr.get("scale", [])) or "none")
        + ".",
    )
    client_side = [lv for lv in ("local", "secagg") if (result.get(lv) or {}).get("points")]
    if client_side:  # before the arguments line
        lines.insert(len(lines) - 2, _placements_bullet(result, client_side))
    for level, title in (
        ("record", "Record-level DP-SGD (ε per interaction, δ = {delta:g})"),
        ("user", "User-level DP, central (ε per user, δ = {delta:.3g})"),
        ("secagg", "User-level DP, SecAgg+ noise shares (ε per user, δ = {delta:.3g})"),
        ("local", "User-level DP, local (ε per user, δ = {delta:.3g})"),
    ):
        points = sorted(
            (result.get(level) or {}).get("points", []), key=lambda p: p["calibration"]["target"]
        )
        if not points:
            continue
        delta = result[level if level == "record" else "user"]["delta"]
        lines += [f"### {title.format(delta=delta)}", ""]
        lines += _level_table(level, points, ref)
        lines.append("")
    pop = float(result["popularity"][METRIC])
    rnd = (result.get("random_ranking") or {}).get(METRIC)
    lines += [
        f"Popularity (training counts, same split and protocol): NDCG@10 {pop:.4f}"
        + (f"; a uniformly random ranking: {rnd:.4f} (expected)" if rnd is not None else "")
        + ". "
        "± after NDCG@10: standard error of the mean over users; after Δ: standard error "
        "of the mean per-user difference to the no-DP model (paired, same users).",
        "",
    ]
    lines += _goal_lines(result["goal"], result)
    if usr.get("scale"):
        at = usr["scale"][0]["scale"]["goal_epsilon"]
        lines += [
            "",
            "### What it takes: the noise of a larger federation (extrapolation)",
            "",
            f"Runs of the same {result['clients_per_round']} clients whose averaged update "
            f"carries the noise it would have in a federation of m x {result['users']} users, "
            f"all in every round, at user-level ε = {at:g} (δ = 1/(mN)^1.1): σ = "
            "σ(that federation) / m. Assumes the extra users' updates look like these; the "
            f"runs themselves are not ε = {at:g} for these {result['users']} users.",
            "",
            "| users (m x N) | σ there | σ here | noise std on average | NDCG@10 | x no DP "
            "| Δ NDCG@10 vs no DP |",
            "|---|---|---|---|---|---|---|",
        ]
        for p in usr["scale"]:
            s = p["scale"]
            nd = float(p["metrics"][METRIC])
            lines.append(
                f"| {s['users']} ({s['multiplier']:g}x) | {s['sigma_of_that_federation']:.3g} | "
                f"{s['sigma_run']:.3g} | {p['noise_std_on_average']:.3g} | "
                f"{nd:.4f} ± {p['ndcg_standard_error']:.4f} | {nd / ref_ndcg:.2f}x | "
                f"{nd - ref_ndcg:+.4f} ± {p['paired_se_vs_no_dp']:.4f} |"
            )
    lines += ["", "Caveats:", ""]
    lines += _tuning_caveat(result)
    lines += [f"- {note}" for note in result.get("notes", [])]
    if rec["points"]:
        lines.append(
            "- Without DP-SGD the clients train with batches of batch-size records; under "
            "DP-SGD with Poisson batches at dp-sample-rate and per-sample clipping. The "
            "record-level gap to ∞ therefore includes clipping and batch shape, not only noise."
        )
    lines += [
        "- The clip bound is read off the non-private run's updates, i.e. tuned on the "
        "private data without accounting for it; a deployment fixes it in advance (from a "
        "public proxy, or a DP quantile estimate).",
        "- Central user-level DP protects what the server publishes, not the server's view "
        "(docs/privacy.md).",
        f"- Few rounds ({result['rounds']}): the non-private model is still improving (20 "
        "rounds in quality.md).",
        "",
        f"![ε–utility curve]({png})",
    ]
    return "\n".join(lines) + "\n"


def _placements_text(result: dict[str, Any]) -> str:
    """Which user-level placements the report has (central only in older reports)."""
    names = [
        PLACEMENT_LEVELS[lv] for lv in PLACEMENT_LEVELS if (result.get(lv) or {}).get("points")
    ]
    if len(names) <= 1:
        return f"{(names or ['central'])[0]} placement"
    return ", ".join(names[:-1]) + f" and {names[-1]} placements"


def _span(values: Sequence[float]) -> str:
    low, high = f"{min(values):.3g}", f"{max(values):.3g}"
    return low if low == high else f"{low}-{high}"


def _tuning_caveat(result: dict[str, Any]) -> list[str]:
    """Every point shares the non-private tuning; what that does to DP-SGD's updates."""

    def median_norm(point: dict[str, Any]) -> float | None:
        rounds = point.get("rounds") or []
        return rounds[-1].get("update_norm_median") if rounds else None

    nodp = median_norm(result["no_dp"])
    rec = [n for p in result["record"]["points"] if (n := median_norm(p)) is not None]
    text = "- Every point of a level uses the same training settings, not re-tuned per ε" + (
        " (what was searched is in the notes below)."
        if result.get("notes")
        else " (no search over client optimizer, learning rates or clip bounds under noise)."
    )
    rec_keys = result["record"].get("settings") or {}
    if rec and rec_keys and nodp:
        text += (
            " The record-level points train with the product's DP-SGD defaults ("
            + ", ".join(f"{k} {v}" for k, v in rec_keys.items())
            + "; chosen by a small search on this data set, full batch over q 0.5 and 0.1, "
            "see docs/privacy.md), the user-level points with the non-private tuning; client "
            f"updates' median L2 norm in the last round: {_span(rec)} under DP-SGD "
            f"(no DP: {nodp:.3g})."
        )
    elif rec and nodp:
        text += (
            f" Under DP-SGD the local Adam turns each noisy gradient into a step of about the "
            f"learning rate on every coordinate, so a client's update has median L2 norm "
            f"{_span(rec)} in the last round at every ε (no DP: {nodp:.3g}), mostly "
            "noise on every item row, which the server learning rate "
            f"{result['settings'].get('server-learning-rate')} then applies. Settings that "
            "suit DP-SGD better were not searched for here."
        )
    return [text]


def _record_bullet(result: dict[str, Any]) -> str:
    rec = result["record"]
    return (
        f"- **Record level** (unit: one interaction): DP-SGD on every client, dp-max-grad-norm "
        f"{rec['max_grad_norm']}, Poisson sampling at dp-sample-rate {rec['dp_sample_rate']}, "
        f"δ = {rec['delta']:g}. The noise multiplier σ is calibrated for the target ε over all "
        f"{result['rounds']} rounds: "
        + _plans_text(rec.get("plans", []))
        + "; Opacus' `get_noise_multiplier` on the plans that spend the most, largest σ, "
        "checked (and raised where needed) with the project's RDP accountant "
        "(`shared/privacy/accounting.py`). The ε column is what the clients' own accountants "
        "hold at the end, maximum over clients."
        + (
            " Client training as the product's DP defaults ("
            + ", ".join(f"{k} {v}" for k, v in rec["settings"].items())
            + "), the rest as above."
            if rec.get("settings")
            else ""
        )
    )


def _placements_bullet(result: dict[str, Any], levels: Sequence[str]) -> str:
    """How the client-side placements were run, with the same σ, C and accounting."""
    k = result["clients_per_round"]
    text = (
        "- **User level, client-side noise** (same unit, C, σ, δ and accounting as central; "
        "every client keeps its own ledger): "
    )
    parts = []
    if "local" in levels:
        parts.append(
            "*local*: each client clips its update and adds all of N(0, (σC)²) before sending "
            f"(the server then averages as without DP), so the average carries {k} clients' "
            f"noise: std σC/sqrt(K), sqrt({k}) = {math.sqrt(k):.0f}x central's"
        )
    if "secagg" in levels:
        t = result["secagg"].get("secagg_threshold")
        parts.append(
            f"*secagg*: each client adds a share σC/sqrt(t), t = {t} (SecAgg+'s threshold, "
            f"{result['secagg']['reconstruction_threshold']:g} x {k} shares), so the sum "
            "carries σC·sqrt(K/t) = "
            f"{math.sqrt(k / t) if t else float('nan'):.2f}x central's noise; the sum is "
            "computed with SecAgg+'s arithmetic (Flower's quantization, integer sum, "
            "dequantization) but without its masks, which cancel exactly -- the protocol "
            "itself runs under Flower only (`fedrec simulate`, tests/server/test_secagg.py)"
        )
    return text + "; ".join(parts) + "."


def _level_table(level: str, points: Sequence[dict[str, Any]], ref: dict[str, Any]) -> list[str]:
    ref_ndcg = float(ref["metrics"][METRIC])
    user = level != "record"
    head = "| target ε | σ | ε reached | NDCG@10 | HR@10 | x no DP | Δ NDCG@10 vs no DP |"
    rule = "|---|---|---|---|---|---|---|"
    if user:
        formula = {"user": "σC/K", "local": "σC/sqrt(K)", "secagg": "σC/sqrt(Kt)"}[level]
        head += f" clipped | noise std on average ({formula}) |"
        rule += "---|---|"
    lines = [head, rule]
    for p in points:
        nd = float(p["metrics"][METRIC])
        reached = p["user_privacy"]["epsilon"] if user else p["record_epsilon_max"]
        cells = [
            f"{p['calibration']['target']:g}",
            f"{p['calibration']['sigma']:.3g}",
            f"{reached:.3g}",
            f"{nd:.4f} ± {p['ndcg_standard_error']:.4f}{_runs_note(p)}",
            f"{p['metrics'][f'hr@{K}_full']:.4f}",
            f"{nd / ref_ndcg:.2f}x",
            f"{nd - ref_ndcg:+.4f} ± {p['paired_se_vs_no_dp']:.4f}",
        ]
        if user:
            clipped = [r["clipped_fraction"] for r in p["rounds"] if "clipped_fraction" in r]
            cells += [
                f"{np.mean(clipped):.0%}" if clipped else "-",
                f"{p['noise_std_on_average']:.3g}",
            ]
        lines.append("| " + " | ".join(cells) + " |")
    cells = [
        "∞ (no DP)",
        "0",
        "∞",
        f"{ref_ndcg:.4f} ± {ref['ndcg_standard_error']:.4f}",
        f"{ref['metrics'][f'hr@{K}_full']:.4f}",
        "1.00x",
        "0",
    ]
    if user:
        cells += ["-", "0"]
    lines.append("| " + " | ".join(cells) + " |")
    return lines


def _runs_note(point: dict[str, Any]) -> str:
    runs = point.get("ndcg_runs") or []
    if len(runs) < 2:
        return ""
    return f" (mean of {len(runs)} runs: " + ", ".join(f"{x:.4f}" for x in runs) + ")"


def _user_delta_source(result: dict[str, Any]) -> str:
    return "user-delta" if float(result["settings"].get("user-delta", 0) or 0) > 0 else "1/N^1.1"


def _plans_text(plans: Sequence[dict[str, Any]]) -> str:
    """The clients' DP-SGD plans: one, or the range of several after rounding."""
    if len(plans) == 1:
        p = plans[0]
        return (
            f"every client runs the same plan (q {p['sample_rate']:.3g}, "
            f"{p['steps_per_round']} steps per round)"
        )
    qs = [p["sample_rate"] for p in plans]
    steps = [p["steps_per_round"] for p in plans]
    return (
        f"clients run {len(plans)} distinct (q, steps per round) plans after rounding to whole "
        f"records (q {min(qs):.3g}-{max(qs):.3g}, {min(steps)}-{max(steps)} steps per round)"
    )


def _goal_lines(goal: dict[str, Any], result: dict[str, Any]) -> list[str]:
    if goal.get("met") is None:
        return [
            f"Goal (user-level ε = {goal['epsilon']:g}, {goal['ratio_required']:g}x no DP): "
            "not measured in this run."
        ]
    verdict = "**met**" if goal["met"] else "**not met**"
    point = point_at(result["user"]["points"], goal["epsilon"])
    paired = f" ± {point['paired_se_vs_no_dp']:.4f}" if point else ""
    lines = [
        f"Goal of issue {goal['issue']}, user-level ε = {goal['epsilon']:g} "
        f"(δ = {_user_delta_source(result)} ≈ "
        f"{result['user']['delta']:.2g}) within {goal['ratio_required']}x the non-private "
        f"federated model: {verdict} -- NDCG@10 {goal['ndcg']:.4f} = {goal['ratio']:.2f}x "
        f"{goal['reference_ndcg']:.4f} (threshold {goal['threshold_ndcg']:.4f}; difference "
        f"{goal['ndcg'] - goal['reference_ndcg']:+.4f}{paired}), with "
        f"{result['clients_per_round']} clients per round (all {result['users']}), "
        f"C = {result['user']['clip']:.3g}, "
        + (f"embedding-dim {dim}, " if (dim := result["settings"].get("embedding-dim")) else "")
        + f"{result['rounds']} rounds.",
    ]
    runs = (point or {}).get("ndcg_runs") or []
    if len(runs) > 1:
        hits = sum(x >= goal["threshold_ndcg"] for x in runs)
        lines[-1] += (
            f" NDCG@10 is the mean of {len(runs)} runs with fresh noise "
            f"({', '.join(f'{x:.4f}' for x in runs)}; std {np.std(runs, ddof=1):.4f}); "
            f"{hits} of them alone reach the threshold."
        )
    if goal["threshold_ndcg"] <= goal["popularity_ndcg"]:
        lines += [
            "",
            f"Read with care: after {result['rounds']} rounds the threshold "
            f"({goal['threshold_ndcg']:.4f}) is at or below popularity "
            f"({goal['popularity_ndcg']:.4f}), so meeting it does not show personalisation "
            "beyond popularity.",
        ]
    return lines


def markdown(result: dict[str, Any], name: str) -> str:
    """The report of ``result`` saved as ``<name>``."""
    return markdown_report(result, f"{name}.png")


def plot(result: dict[str, Any], path: Path) -> None:
    """NDCG@10 against ε for every level measured."""
    plot_curve(result, path)
