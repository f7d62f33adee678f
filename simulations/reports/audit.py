"""The privacy-audit report: each audited mechanism's lower bound on ε beside its claim."""

from __future__ import annotations

from typing import Any


def markdown_report(result: dict[str, Any]) -> str:
    """The report: one row per audited mechanism, the bound next to the claim."""
    audit, s = result["audit"], result["settings"]
    lines = [
        "# Privacy audit: empirical lower bounds on ε",
        "",
        f"{audit['method']}, {result['dataset']}, {result['date']}. Each row trains one round "
        "with canaries through fedrec's own code and attacks what the server sees; the lower "
        f"bound holds with {audit['confidence']:.0%} confidence (split over the attackers and "
        "guess counts tried). A bound above the accounted ε of that round means the "
        "guarantee is broken. Controls are deliberately broken mechanisms, run only by this "
        "benchmark: each must be caught, or the audit is too weak to mean anything.",
        "",
        f"- Record level: {audit['record_canaries']} canary clients (one canary record each), "
        f"dp-noise-multiplier {s['dp-noise-multiplier']}, dp-max-grad-norm "
        f"{s['dp-max-grad-norm']}, "
        f"dp-batch-size {s['dp-batch-size']}, dp-sample-rate {s['dp-sample-rate']}, "
        f"local-epochs {s['local-epochs']}, δ = {s['dp-delta']:g}.",
        f"- User level: {audit['user_canaries']} canary clients among "
        f"{audit['background_clients']} real clients' round-1 updates, user-clip "
        f"{s['user-clip']}, user-noise-multiplier {s['user-noise-multiplier']}; audited at "
        f"δ = {audit['user_delta']:g} (the accountant restates each claim at that δ: the run's "
        "own δ = 1/N^1.1 is too large for a one-run bound to say anything).",
        "",
        "| level | placement | mechanism | σ | δ | accounted ε (this round) | accounted ε (run) "
        "| empirical ε lower bound | best attacker | correct / guesses | a perfect attacker "
        "could certify | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        a = row["audit"]
        lines.append(
            f"| {row['level']} | {row['placement']} | {row['mechanism']} "
            f"| {row['noise_multiplier']:g} | {row['delta']:g} "
            f"| {row['claimed_epsilon']:.2f} | {row['claimed_epsilon_run']:.2f} "
            f"| {a['epsilon_lower_bound']:.2f} | {a['attacker'] or '-'} "
            f"| {a['correct']} / {a['guesses']} | {a['power']:.2f} | {row['verdict']} |"
        )
    held = [r for r in result["rows"] if r["mechanism"] == "fedrec"]
    caught = [r for r in result["rows"] if r["mechanism"] != "fedrec"]
    lines += [
        "",
        f"fedrec's mechanisms: {sum(r['verdict'] == 'holds' for r in held)} of {len(held)} "
        "hold. Controls: "
        f"{sum(r['verdict'] == 'caught' for r in caught)} of {len(caught)} caught, "
        f"{sum(r['verdict'] == 'beyond power' for r in caught)} beyond what these canaries "
        "can certify (a claim at or above what a perfect attacker could certify cannot be "
        "shown broken by this audit: the record-level rows at a larger σ show the same "
        "attackers catching the same broken mechanisms where the claim is within reach).",
        "",
        "A lower bound far below the accounted ε is expected: one round of canaries bounds "
        "what this attack can show, not what the mechanism leaks at worst.",
        "",
        f"Regenerate: `fedrec bench privacy-audit` (seed {audit['seed']}, record-level σ "
        f"scales {', '.join(f'{x:g}' for x in audit['record_sigma_scales'])}, "
        f"{audit['user_canaries']} user-level canaries).",
        "",
    ]
    if "cooccurrence" in result:  # reports from before that arm existed render as they were
        lines += markdown_section(result["cooccurrence"])
    return "\n".join(lines)


def markdown_section(arm: dict[str, Any]) -> list[str]:
    """The report's co-occurrence section, every number from ``arm``."""
    background = (
        f"{arm['background_users']} {arm['background']} training users"
        if arm["background"] != "synthetic"
        else f"{arm['background_users']} synthetic users"
    )
    if arm["items_kept"] is not None and arm["background"] != "synthetic":
        background += f", their items restricted to the {arm['n_items']} most-rated"
    else:
        background += f", {arm['n_items']} items"
    lines = [
        "## The private co-occurrence release",
        "",
        f"{arm['date']}. One release per row through the product's functions "
        "(`cooccurrence_share` per client, SecAgg+'s quantized integer sum under `secagg`, "
        "`release_sum` under `central`, σ from `plan_release` for the claimed ε and the "
        f"federation's size). Background: {background}. Canaries: {arm['canaries']} users "
        f"of {arm['canary_size']} items each, no two sharing a pair of items, each in the "
        f"release with probability 1/2 ({arm['included']} were); an excluded canary takes "
        "part with no items, so the federation's size, σ and the SecAgg+ threshold do not "
        f"depend on the canaries. Canaries and bits from a seeded generator (seed "
        f"{arm['seed']}), every noise draw from the product's CSPRNG. The attacker "
        f"(`{arm['attacker']}`) knows every background user's items and the mechanism, "
        "subtracts their terms from the released sum and scores each canary by the sum of "
        "its own item pairs' entries. Audited at "
        f"δ = {arm['delta']:g} with {arm['confidence']:.0%} confidence, the claim restated "
        "at that δ by the accountant (a Gaussian mechanism holds at every δ; the run's own "
        "δ = 1/N^1.1 is too large for a one-run bound). Controls: `unnormalised` (the term "
        "x xᵀ without the /n, σ still calibrated for norm 1), `noise-too-small` (a tenth "
        "of the plan's noise), `diagonal-only` (the plan's noise on the diagonal only).",
        "",
        "| placement | mechanism | claimed ε (at the run's δ) | run δ | σ on the sum "
        "| each client adds | clients | accounted ε at the audit's δ "
        "| empirical ε lower bound | correct / guesses | a perfect attacker could certify "
        "| verdict |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in arm["rows"]:
        a = row["audit"]
        lines.append(
            f"| {row['placement']} | {row['mechanism']} | {row['run_epsilon']:.2f} "
            f"| {row['run_delta']:.2g} | {row['noise_multiplier']:.3f} "
            f"| {row['client_std']:.4f} | {row['clients']} | {row['claimed_epsilon']:.2f} "
            f"| {a['epsilon_lower_bound']:.2f} | {a['correct']} / {a['guesses']} "
            f"| {a['power']:.2f} | {row['verdict']} |"
        )
    held = [r for r in arm["rows"] if r["mechanism"] == "fedrec"]
    ctrl = [r for r in arm["rows"] if r["mechanism"] != "fedrec"]
    below = sum(r["audit"]["epsilon_lower_bound"] <= r["run_epsilon"] for r in held)
    missed = [
        f"{r['mechanism']} ({r['placement']}, ε {r['target_epsilon']:g}: {r['verdict']})"
        for r in ctrl
        if r["verdict"] != "caught"
    ]
    lines += [
        "",
        f"fedrec's release: {sum(r['verdict'] == 'holds' for r in held)} of {len(held)} "
        f"hold ({below} of {len(held)} also below the claimed ε at the run's own δ). "
        f"Controls: {sum(r['verdict'] == 'caught' for r in ctrl)} of {len(ctrl)} caught"
        + (f"; not caught: {', '.join(missed)}." if missed else "."),
        "",
        "Regenerate: `fedrec bench privacy-audit --only-cooccurrence --cooccurrence "
        f"{','.join(arm['placements'])} --cooccurrence-epsilons "
        f"{','.join(f'{e:g}' for e in arm['epsilons'])} --cooccurrence-canaries "
        f"{arm['canaries']} --cooccurrence-canary-size {arm['canary_size']} "
        f"--cooccurrence-items {arm['items_kept'] or 0}` (seed {arm['seed']}; "
        f"{arm['seconds'] / 60:.1f} min on {arm['machine']['cpus']} CPUs).",
        "",
    ]
    return lines


def markdown(result: dict[str, Any], name: str) -> str:
    """The report of ``result`` saved as ``<name>``."""
    return markdown_report(result)
