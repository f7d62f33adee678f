"""The federation report: round time and memory, Flower against the single-process loop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fedrec.simulations.result_keys import dataset_label


def plot(result: dict[str, Any], path: Path) -> None:
    """Round time vs clients per round and vs catalogue size; peak memory beside."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cat = result["catalogue"]
    fig, axes = plt.subplots(1, 3 if cat else 2, figsize=(15 if cat else 10, 4.2))
    ov = result["overhead"]
    x = [a["clients_per_round"] for a in ov]
    ax = axes[0]
    ax.plot(x, [a["flower"]["round_s"][0] for a in ov], "o--", label="Flower round 1 (start-up)")
    ax.plot(x, [a["flower"]["round_s"][1] for a in ov], "o-", label="Flower round 2")
    single = [a for a in ov if "flower_per_user" in a]
    if single:
        ax.plot(
            [a["clients_per_round"] for a in single],
            [a["flower_per_user"]["round_s"][1] for a in single],
            "^-",
            label="Flower round 2, one user per node",
        )
    ax.plot(x, [a["plain"]["round_s"] for a in ov], "s-", label="plain loop")
    scale = result.get("clients", [])
    if scale:
        ax.plot(
            [a["clients_per_round"] for a in scale],
            [a["flower"]["round_s"][1] for a in scale],
            "d:",
            label="Flower round 2, synthetic users",
        )
    ax.set(xscale="log", yscale="log", xlabel="clients per round", ylabel="round time (s)")
    ax.set_title(f"{result['dataset']}: round time")
    ax.legend()
    xi = [a["n_items"] for a in cat]
    if cat:
        ax = axes[1]
        ax.plot(xi, [a["flower"]["round_s"][1] for a in cat], "o-", label="Flower round 2")
        ax.plot(xi, [a["plain"]["round_s"] for a in cat], "s-", label="plain loop")
        ax.set(xscale="log", yscale="log", xlabel="catalogue size (items)", ylabel="round time (s)")
        ax.set_title(f"synthetic data, {cat[0]['clients_per_round']} clients/round")
        ax.legend()
    ax = axes[-1]
    ax.plot(x, [a["flower"]["peak_rss_mib"] for a in ov], "o-", label="vs clients/round")
    if scale:
        ax.plot(
            [a["clients_per_round"] for a in scale],
            [a["flower"]["peak_rss_mib"] for a in scale],
            "d:",
            color="C0",
        )
    if cat:
        ax2 = ax.twiny()
        ax2.plot(xi, [a["flower"]["peak_rss_mib"] for a in cat], "s-", color="C3")
        ax2.set(xscale="log", xlabel="catalogue size (red)")
    ax.set(
        xscale="log",
        xlabel="clients per round" + (" (blue)" if cat else ""),
        ylabel="peak RSS, all processes (MiB)",
    )
    ax.set_title("peak memory (Flower run)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown_report(result: dict[str, Any], png: str) -> str:
    """The Markdown table written next to the JSON."""
    s = result["settings"]
    dp = (
        f"DP-SGD on (noise {s['dp-noise-multiplier']}, sample-rate {s['dp-sample-rate']})"
        if s["dp-enabled"]
        else "no DP"
    )
    # Results from before cohorts ran one user per node (the key did not exist then, and
    # their reports did not say it).
    per_message = s.get("simulation-users-per-message", 1)
    how = (
        ""
        if "simulation-users-per-message" not in s
        else ", one user per node"
        if per_message == 1
        else ", the sampled users on one worker per core, "
        + (f"at most {per_message} per message" if per_message else "split evenly")
    )
    single = any("flower_per_user" in a for a in result["overhead"])
    pss = all("peak_pss_mib" in a["flower"] for a in result["overhead"])
    lines = [
        "# Federation benchmark",
        "",
        f"Written by `fedrec bench federation` on {result['date']} "
        f"({result['machine']['cpus']} CPUs, {result['machine']['platform']}).",
        f"Settings: {result['dataset']}, local-epochs {s['local-epochs']}, dim "
        f"{s['embedding-dim']}, text-tower {s.get('text-tower', 'off')}, strategy "
        f"{s['strategy']}, {dp}"
        + (f", max-in-flight {s['max-in-flight']}" if "max-in-flight" in s else "")
        + "; training-only rounds "
        f"(no evaluation). Flower: simulation engine, Ray backend, one actor per core{how}"
        + ("; beside it, one user per node" if single and per_message != 1 else "")
        + ". Plain loop: the same client and aggregation functions in one process.",
        "",
        f"## Framework overhead ({dataset_label(result['dataset'])})",
        "",
        "| clients/round | Flower round 1 s | Flower round 2 s | plain loop s "
        "| overhead (round 2) | peak RSS MiB (Flower) |"
        + (" peak PSS MiB (Flower) |" if pss else "")
        + (" one user per node: round 2 s | overhead |" if single else ""),
        "|---|---|---|---|---|---|" + ("---|" if pss else "") + ("---|---|" if single else ""),
    ]
    for a in result["overhead"]:
        f = a["flower"]
        row = (
            f"| {a['clients_per_round']} | {f['round_s'][0]:.1f} | {f['round_s'][1]:.1f} | "
            f"{a['plain']['round_s']:.1f} | {a['overhead_round2']:.2f}x | "
            f"{f['peak_rss_mib']:.0f} |" + (f" {f['peak_pss_mib']:.0f} |" if pss else "")
        )
        if single:
            p = a.get("flower_per_user")
            row += (
                f" {p['round_s'][1]:.1f} | {a['overhead_round2_per_user']:.2f}x |"
                if p
                else " – | – |"
            )
        lines.append(row)
    lines += memory_section(result)
    if not result["catalogue"]:
        return "\n".join([*lines, "", f"![round time and memory]({png})", ""])
    shape = result["catalogue"][0]
    lines += [
        "",
        f"## Catalogue size (synthetic, {shape['n_users']} users x "
        f"{shape['per_user']} interactions)",
        "",
        "| items | clients/round | Flower round 2 s | plain loop s | overhead "
        "| peak RSS MiB (Flower) |",
        "|---|---|---|---|---|---|",
    ]
    for a in result["catalogue"]:
        f = a["flower"]
        lines.append(
            f"| {a['n_items']} | {a['clients_per_round']} | {f['round_s'][1]:.1f} | "
            f"{a['plain']['round_s']:.1f} | {a['overhead_round2']:.2f}x | "
            f"{f['peak_rss_mib']:.0f} |"
        )
    lines += _scale_section(result)
    lines += ["", f"![round time and memory]({png})", ""]
    return "\n".join(lines)


def memory_section(result: dict[str, Any]) -> list[str]:
    """The largest overhead arm's processes at its peak, and what each kind imports."""
    arms = [a for a in result["overhead"] if a["flower"].get("processes")]
    lines: list[str] = []
    if arms:
        arm = max(arms, key=lambda a: a["clients_per_round"])
        f, rows = arm["flower"], arm["flower"]["processes"]
        lines += [
            "",
            f"## Memory at the peak ({arm['clients_per_round']} clients, `fedrec simulate`)",
            "",
            "Summed over the federation's processes, sampled every 0.2 s. RSS counts a page "
            "shared by several processes (torch's libraries in every worker, Ray's object "
            "store) once in each; PSS splits it between them; USS is what a process alone "
            f"holds. Peak RSS {f['peak_rss_mib']:.0f} MiB, peak PSS "
            f"{f.get('peak_pss_mib', 0.0):.0f} MiB; the processes at the sample of the "
            "largest RSS:",
            "",
            "| process | RSS MiB | USS MiB | PSS MiB |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {r['role']} | {r['rss']:.0f} | {r['uss']:.0f} | {r['pss']:.0f} |" for r in rows
        ]
        total = {k: sum(r[k] for r in rows) for k in ("rss", "uss", "pss")}
        lines.append(
            f"| all {len(rows)} | {total['rss']:.0f} | {total['uss']:.0f} | {total['pss']:.0f} |"
        )
    imports = result.get("imports") or {}
    if imports:
        lines += [
            "",
            "What each kind of process holds after its imports alone (a fresh interpreter):",
            "",
            "| imports of | RSS MiB | USS MiB | PSS MiB |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {what} | {m['rss']:.0f} | {m['uss']:.0f} | {m['pss']:.0f} |"
            for what, m in imports.items()
        ]
    return lines


def _scale_section(result: dict[str, Any]) -> list[str]:
    """Synthetic federations by size, the memory extrapolation and the round's profile."""
    lines: list[str] = []
    scale = result.get("clients", [])
    if scale:
        lines += [
            "",
            f"## Clients per round (synthetic users, {scale[0]['n_items']} items x "
            f"{scale[0]['per_user']} interactions, every user every round)",
            "",
            "| users | Flower round 1 s | Flower round 2 s | peak RSS MiB | peak PSS MiB |",
            "|---|---|---|---|---|",
        ]
        for a in scale:
            f = a["flower"]
            pss = f.get("peak_pss_mib")
            lines.append(
                f"| {a['clients_per_round']} | {f['round_s'][0]:.1f} | {f['round_s'][1]:.1f} | "
                f"{f['peak_rss_mib']:.0f} | " + (f"{pss:.0f} |" if pss is not None else "– |")
            )
    fits = result.get("memory_fit") or {}
    limit = result.get("memory_limit_gib")
    said = []
    for what, unit in (("clients", "users"), ("items", "items")):
        fit = fits.get(what)
        if fit:
            said.append(
                f"{fit['mib_per_unit']:.3g} MiB per {unit[:-1]} over a {fit['base_mib']:.0f} MiB "
                f"base, reaching {limit} GiB at about {fit['reaches_limit_at']:,.0f} {unit}"
            )
    if said:
        lines += [
            "",
            "Peak RSS grows linearly (least-squares line through the arms above): "
            + "; ".join(said)
            + ". That is where a federation of this shape stops fitting this machine.",
        ]
    profile = result.get("profile")
    if profile:
        lines += [
            "",
            f"## Where a round's time goes ({profile['clients']} clients, plain loop, cProfile)",
            "",
            f"Round 2 took {profile['wall_s_profiled']:.2f} s under the profiler (which "
            "slows every stage a little).",
            "",
            "| stage | function | seconds |",
            "|---|---|---|",
        ]
        for row in profile["stages"]:
            lines.append(f"| {row['stage']} | `{row['function']}` | {row['seconds']:.2f} |")
    return lines


def markdown(result: dict[str, Any], name: str) -> str:
    """The report of ``result`` saved as ``<name>``."""
    return markdown_report(result, f"{name}.png")
