"""The attack report: what the server infers from one client's update, per defense."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from fedrec.simulations.result_keys import PRIOR


def _auc_text(summary: Mapping[str, Any]) -> str:
    mean, se = summary["mean"], summary["se"]
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "n/a"
    if se is None or (isinstance(se, float) and math.isnan(se)):
        return f"{mean:.3f}"
    return f"{mean:.3f} ± {se:.3f}"


def _signed(summary: Mapping[str, Any]) -> str:
    text = _auc_text(summary)
    return text if text.startswith("-") or text == "n/a" else f"+{text}"


def markdown_report(result: Mapping[str, Any]) -> str:
    """The Markdown report of an attack benchmark result."""
    fed = result["federation"]
    s = fed["settings"]
    lines = [
        f"# Attack benchmark: {result['dataset']}",
        "",
        f"Written by `fedrec bench attack` on {result['date']} "
        f"({result['machine']['cpus']} CPUs, {result['machine']['platform']}); "
        f"{result['wall_s']:.0f} s in all.",
        "",
        f"Threat model: {result['threat_model']}. {result['targets']} target clients (one "
        f"user each) drawn with seed {result['seed']}; the secure-aggregation groups are "
        f"drawn from a pool of {result['pool']} clients.",
        "",
        "- **Membership**: ROC AUC of per-item scores, the client's training items against "
        "the items it never touched (held-out items excluded); 0.5 = chance. Attacks: "
        "`factor-row-norm` ‖ΔQ_i‖, `bias-abs` |Δb_i|, `bias-signed` Δb_i, `direction` "
        "(projection of [ΔQ_i, Δb_i] on the update's top singular vector), and on hybrid "
        "updates `user-head-text` ‖ΔW_u (e_i − ē)‖ (the user text head is trained on the "
        "liked items' public texts only, so its change points at them). The table shows "
        "the row-norm attack and the strongest one (by AUC) with its true-positive rate at "
        "1% false positives; all are in the JSON. *Without this "
        "client*: what the server gets with no update from the client: for a single update "
        "the global item bias (`public-prior`: users' items tend to be popular ones), under "
        "SecAgg+ the same attack on the same cohort with the client swapped for another; "
        "*gain* is the paired per-client difference (with minus without), the leak the "
        "client's own update causes.",
        f"- **Rating**: AUC over the items the client touched, rated ≥ "
        # Ratings are whole stars: below the high rating is at most one star less.
        f"{result['high_rating']:g} against ≤ {result['high_rating'] - 1:g}. Update attacks: "
        "`update-magnitude`, "
        "`taste` (global item factors on the user direction estimated from the update); "
        "`public-prior` is the global item bias, which needs no update at all.",
        "- Mean ± standard error over clients. Wall time: training that row's updates plus "
        "the attacks (the no-DP row includes the pool's updates that later rows reuse).",
        f"- Between attacked rounds: scenario `{fed['scenario']}` (client optimizer "
        f"{s['client-optimizer']}, lr {s['learning-rate']}, {s['local-epochs']} local "
        f"epochs, dim {s['embedding-dim']}, server lr {s['server-learning-rate']}"
        + (f", text-tower {s['text-tower']}" if "text-tower" in s else "")
        + ") over all "
        f"{fed['clients']} clients, {fed['seconds']:.0f} s. Record-level DP rows use "
        f"scenario `{fed['dp_scenario']}` with the noise multiplier shown; user-level and "
        "SecAgg+ rows "
        "post-process the no-DP scenario's updates with the project's user-level DP code "
        "(`shared/privacy/user.py`) at its `user-clip` C; "
        + "; ".join(
            f"round {k}: C = {v['clip']:g}, median update norm {v['median_update_norm']:.3g}, "
            f"{100 * v['clipped_share']:.0f}% of updates clipped"
            for k, v in result["clip"].items()
        )
        + ". User-level ε is against the server (no amplification by client sampling: it "
        "knows who took part), by the project's accountant, at δ = `user-delta`. SecAgg+ "
        "with DP: each client adds σC/√K, the least noise the project adds (σC/√t for the "
        "fewest survivors t ≤ K).",
        "",
    ]
    for rnd in result["attacked_rounds"]:
        rows = [r for r in result["rows"] if r["round"] == rnd]
        if not rows:
            continue
        what = "initial model" if rnd == 1 else f"after {rnd - 1} rounds of no-DP federation"
        lines += [
            f"## Round {rnd} ({what})",
            "",
            "| defense | setting | ε (unit) | membership AUC, row norm | membership AUC, "
            "strongest | membership TPR at 1% FPR, strongest (chance 0.01) "
            "| membership AUC without this client | rating AUC, update "
            "| rating AUC, public prior | clients | seed | wall s |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in rows:
            mem = r["membership_auc"]
            rat = r["rating_auc"]
            best = r["strongest_membership_attack"]
            rbest = r["strongest_rating_attack"]
            control = r.get("membership_auc_without_client")
            gain = (r.get("membership_auc_gain") or {}).get(best)
            without = (
                f"{_auc_text(control[best])} (same attack, client swapped out; gain "
                f"{_signed(gain)})"
                if control and gain
                else f"{_auc_text(mem[PRIOR])} (public prior)"
            )
            tpr = (r.get("membership_tpr_at_low_fpr") or {}).get(best)
            lines.append(
                f"| {r['defense']} | {r['setting']} | {r['epsilon_text']} | "
                f"{_auc_text(mem['factor-row-norm'])} | {_auc_text(mem[best])} ({best}) | "
                f"{_auc_text(tpr) if tpr else 'n/a'} | {without} | "
                f"{_auc_text(rat[rbest])} ({rbest}) | {_auc_text(rat[PRIOR])} | "
                f"{r['clients']} | {r['seed']} | {r['wall_s']:.1f} |"
            )
        lines.append("")
    return "\n".join(lines)


def markdown(result: dict[str, Any], name: str) -> str:
    """The report of ``result`` saved as ``<name>``."""
    return markdown_report(result)
