"""The SecAgg+ cost report: the co-occurrence release over Flower, by clients and stage."""

from __future__ import annotations

from typing import Any

from fedrec.server.secagg import STAGES

MIB = 2**20
# Flower's simulation engine: the driver's thread that hands each node its next message.
ENGINE_THREAD = "add_messages_to_queue"
STAGE_NAMES = {
    "setup": "setup",
    "share-keys": "share keys",
    "collect-masked-vectors": "masked vectors",
    "unmask": "unmask",
}


def _mib(n: float) -> str:
    return f"{n / MIB:.2f} MiB"


def _kib(n: float) -> str:
    return f"{n / 1024:.1f} KiB"


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s ({seconds / 60:.1f} min)"


def _users_per_client(result: dict[str, Any], clients: int) -> str:
    per = result["users"] / clients
    return "1" if clients == result["users"] else f"{per:.1f}"


def _arm_rows(result: dict[str, Any], arms: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| clients | users per client | shares (t) | slices measured | first slice | steady "
        "slice | " + " | ".join(STAGE_NAMES[s] for s in STAGES) + " | server's own | a client "
        "sends per slice | receives | engine thread's CPU | peak RSS, driver | peak RSS, all "
        "processes | load avg. |",
        "|---|---|---|---|---|---|" + "---|" * len(STAGES) + "---|---|---|---|---|---|---|",
    ]
    for arm in arms:
        s, p = arm["summary"], arm["privacy"]
        own = sum(s["stage_s"][k] - s["stage_wait_s"][k] for k in STAGES)
        measured = f"{s['measured_slices']} of {arm['slices_total']}"
        load, engine_cpu = _load(arm), _engine_cpu(arm)
        lines.append(
            f"| {arm['clients']} | {_users_per_client(result, arm['clients'])} "
            f"| {p['shares']} ({p['threshold']}) | {measured} | {s['first_slice_s']:.1f} s "
            f"| {s['steady_slice_s']:.1f} s | "
            + " | ".join(f"{s['stage_s'][k]:.2f} s" for k in STAGES)
            + f" | {own:.2f} s | {_mib(s['bytes_per_client']['sent'])} "
            f"| {_kib(s['bytes_per_client']['received'])} | {engine_cpu} "
            f"| {arm['peak_driver_rss_mib']:,.0f} MiB "
            f"| {arm['peak_tree_rss_mib']:,.0f} MiB | {load} |"
        )
    return lines


def _release_lines(result: dict[str, Any]) -> list[str]:
    lines = [
        "| clients | slices | whole release | how | a client sends in all | receives in all |",
        "|---|---|---|---|---|---|",
    ]
    for arm in result["arms"]:
        s = arm["summary"]
        full = s.get("release_bytes_per_client")
        how = (
            "measured, every slice"
            if s["all_slices_measured"]
            else f"extrapolated: {s['measured_slices']} slices measured, "
            f"{arm['slices_total'] - s['measured_slices']} more at the steady slice"
        )
        sent = _mib(full["sent"]) if full else "-"
        received = _kib(full["received"]) if full else "-"
        lines.append(
            f"| {arm['clients']} | {arm['slices_total']} | {_minutes(s['release_s'])} | {how} "
            f"| {sent} | {received} |"
        )
    return lines


def _fit_lines(result: dict[str, Any]) -> list[str]:
    fit, whole = result.get("steady_slice_fit"), result.get("release_at_all_users")
    lines: list[str] = []
    if fit:
        inputs = ", ".join(f"({n:.0f}, {s:.1f} s)" for n, s in fit["inputs"])
        fitted = ", ".join(f"{v:.1f} s" for v in fit["fitted"])
        terms = " + ".join(
            f"{c:.3g}" + ("" if k == 0 else " × clients" if k == 1 else f" × clients^{k}")
            for k, c in enumerate(fit["coefficients"])
        )
        lines += [
            f"**Growth** (least squares over the arms' (clients, steady slice): {inputs}): "
            f"steady slice seconds ≈ {terms}; fitted {fitted}. Per client and slice the "
            "steady slice costs "
            + ", ".join(f"{1000 * s / n:.0f} ms ({n:.0f})" for n, s in fit["inputs"])
            + ".",
            "",
        ]
    if whole:
        source = {
            "measured": "measured, every slice",
            "arm": "its measured slices, the others at its steady slice: extrapolated",
            "fit": "the growth fit above at that many clients, times the slices: extrapolated",
        }[whole["from"]]
        lines += [
            f"**The whole ML-100K release at {whole['clients']} clients** ({whole['slices']} "
            f"slices): {_minutes(whole['release_s'])}, steady slice "
            f"{whole['steady_slice_s']:.1f} s ({source}).",
            "",
        ]
    return lines


def _bytes_lines(result: dict[str, Any]) -> list[str]:
    arm = max(result["arms"], key=lambda a: a["clients"])
    per = arm["summary"]["bytes_per_client"]
    entries = arm["slices"][min(1, len(arm["slices"]) - 1)]["entries"]
    lines = [
        f"### One client's messages in a slice of {entries:,} entries ({arm['clients']} clients)",
        "",
        "| stage | the client sends | the client receives |",
        "|---|---|---|",
    ]
    for stage in STAGES:
        lines.append(
            f"| {STAGE_NAMES[stage]} | {per['sent_by_stage'][stage]:,.0f} B "
            f"| {per['received_by_stage'][stage]:,.0f} B |"
        )
    lines += [
        f"| all | {per['sent']:,.0f} B | {per['received']:,.0f} B |",
        "",
        f"The masked vector is SecAgg+'s integers, 8 bytes an entry ({8 * entries:,} B for "
        f"{entries:,} entries) plus numpy's header: Flower's `secaggplus_mod` sends the "
        "values modulo 2^32 as int64. The same statistic unmasked as float32 would be half "
        "that.",
        "",
    ]
    return lines


def _window_lines(result: dict[str, Any]) -> list[str]:
    windows = result.get("window_arms") or []
    if not windows:
        return []
    n = windows[0]["clients"]
    default = next((a for a in result["arms"] if a["clients"] == n), None)
    rows = ([default] if default else []) + windows
    return [
        f"## The message window at {n} clients (measured)",
        "",
        "Each stage's messages go out at most `max-in-flight` at a time (the first row: the "
        "default, the arm above). Flower's engine thread scans every stored message for "
        "every node, so fewer stored messages cost it less; two Ray actors only ever run "
        "two clients at once.",
        "",
        "| max-in-flight | first slice | steady slice | per client and slice | masked vectors "
        "| engine thread's CPU | load avg. |",
        "|---|---|---|---|---|---|---|",
        *(
            f"| {a['max_in_flight']} | {a['summary']['first_slice_s']:.1f} s "
            f"| {a['summary']['steady_slice_s']:.1f} s "
            f"| {1000 * a['summary']['steady_slice_s'] / n:.0f} ms "
            f"| {a['summary']['stage_s']['collect-masked-vectors']:.1f} s "
            f"| {_engine_cpu(a)} | {_load(a)} |"
            for a in rows
        ),
        "",
    ]


def _engine_cpu(arm: dict[str, Any]) -> str:
    engine = next((t for t in arm["threads"] if t["thread"] == ENGINE_THREAD), None)
    return f"{engine['cpu_share']:.0%}" if engine else "-"


def _load(arm: dict[str, Any]) -> str:
    return "–".join(f"{x:.1f}" for x in arm["load_average"])


def _sweep_lines(result: dict[str, Any]) -> list[str]:
    sweep = result.get("share_sweep") or []
    if not sweep:
        return []
    return [
        f"## Cost against the share graph ({sweep[0]['clients']} clients, measured)",
        "",
        *_arm_rows(result, sweep),
        "",
    ]


def _thread_lines(result: dict[str, Any]) -> list[str]:
    arm = max(result["arms"], key=lambda a: a["clients"])
    if not arm.get("threads"):
        return []
    lines = [
        f"## Where the driver's CPU goes ({arm['clients']} clients, steady slices, measured)",
        "",
        "The driver process runs the ServerApp and Flower's simulation engine, whose threads "
        "share one GIL. CPU seconds per thread over the steady slices (the kernel's count), "
        "and where each thread was in samples every 20 ms (its innermost Python frame: a "
        "thread blocked in C, a sleep or Ray's object store, shows the function that called "
        f"it). `{ENGINE_THREAD}` is Flower's engine handing each node its next message: for "
        "every node in turn it asks the in-memory LinkState, which scans every stored "
        "message (`get_message_ins`, `_check_stored_messages`), so a pass costs nodes × "
        "stored messages; fedrec keeps at most `max-in-flight` = "
        f"{result['settings']['max-in-flight']} of them stored per stage.",
        "",
        "| thread | CPU seconds | share of one core | where (share of samples) |",
        "|---|---|---|---|",
    ]
    for row in arm["threads"]:
        where = "; ".join(f"`{w['function']}` {w['samples']:.0%}" for w in row["where"])
        lines.append(f"| {row['thread']} | {row['cpu_s']:.1f} | {row['cpu_share']:.0%} | {where} |")
    lines.append("")
    return lines


def _profile_lines(result: dict[str, Any]) -> list[str]:
    prof = result.get("profile")
    if not prof:
        return []
    total = sum(r["seconds"] for r in prof["by_package"])
    lines = [
        f"## Where a slice's time goes (profile, {prof['clients']} clients, in one process)",
        "",
        f"Slice {prof['slice']} ({prof['entries']:,} entries) of the release over "
        f"{prof['clients']} clients on an in-process grid: the product's ClientApp called "
        "in the server's process, no Ray, so every client's work and the server's are one "
        f"profile ({prof['wall_s']:.1f} s under cProfile, whose overhead inflates it). Self "
        "time by where the code is; a builtin's (a lock, an allocation) and numpy's count "
        "for their callers.",
        "",
        "| part | seconds | share |",
        "|---|---|---|",
    ]
    for row in sorted(prof["by_package"], key=lambda r: -r["seconds"]):
        lines.append(f"| {row['part']} | {row['seconds']:.2f} | {row['seconds'] / total:.0%} |")
    lines += [
        "",
        "| function (cumulative, all clients) | seconds |",
        "|---|---|",
    ]
    for row in prof["functions"]:
        lines.append(f"| {row['label']} (`{row['function']}`) | {row['seconds']:.2f} |")
    lines.append("")
    return lines


def _shamir_lines(result: dict[str, Any]) -> list[str]:
    sh = result.get("shamir")
    if not sh:
        return []
    every = sh["every_client"]
    lines = [
        "## Why every-pair share graphs do not finish: Flower's Shamir sharing",
        "",
        "One client's share-keys work as Flower's `secaggplus_mod` does it (`create_shares` of "
        f"its 32-byte mask seed and of its first private key, {sh['private_key_bytes']} bytes "
        "as PEM, 16-byte chunks each), and the server's unmasking per client (`combine_shares` "
        "of t shares), timed here, best of three:",
        "",
        "| shares | threshold t | split per client (share keys) | combine per client (unmask) |",
        "|---|---|---|---|",
    ]
    for r in sh["rows"]:
        lines.append(
            f"| {r['shares']} | {r['threshold']} | {r['split_s'] * 1000:,.1f} ms "
            f"| {r['combine_s'] * 1000:,.1f} ms |"
        )
    lines += [
        "",
        f"A fit seconds = c × shares × t through these points (c = "
        f"{sh['fit_seconds_per_share_x_threshold'] * 1e6:.0f} µs) gives, for every one of "
        f"{sh['clients']} clients sharing with all ({every['shares']} shares, t = "
        f"{every['threshold']}), about {every['split_s_per_client']:,.0f} s of share-keys "
        f"work per client and slice (extrapolated), {sh['clients']} times over: the "
        "`secagg-num-shares = 1.0` release cannot pass its first share-keys stage on this "
        "machine.",
        "",
    ]
    return lines


def _num_shares(value: float) -> str:
    """``secagg-num-shares`` as set: a count, or a fraction of the clients (1.0: all)."""
    return f"{value:g}" if value > 1 else f"{value:.1f} (a fraction{': all' if value == 1 else ''})"


def _graph_lines(result: dict[str, Any]) -> list[str]:
    graphs = result["share_graphs"]
    g0 = graphs[0]
    lines = [
        f"## The share graph's privacy ({g0['clients']} clients, computed)",
        "",
        f"By the product's rules (`secagg_shares`, `secagg_threshold`, `plan_release`) at "
        f"user-level ε {g0['epsilon']:.2f}, δ {g0['delta']:.2g}, "
        f"{g0['colluders']} colluders assumed: each client's noise share is sized so that "
        "the t fewest survivors SecAgg+ unmasks for already carry the central σ; when every "
        "client survives the sum carries √(clients / t) times that. The last column is the "
        "ε a central release with that much noise would account (what the extra noise costs "
        "in utility, not a guarantee).",
        "",
        "| secagg-num-shares | shares per client | threshold t | each client's noise std "
        "| σ on the sum, every client in it | × central σ | ε of that noise if central |",
        "|---|---|---|---|---|---|---|",
    ]
    for g in graphs:
        lines.append(
            f"| {_num_shares(g['secagg_num_shares'])} | {g['shares']} | {g['threshold']} "
            f"| {g['client_std']:.4f} | {g['sum_sigma_all_survive']:.2f} "
            f"| {g['vs_central']:.2f}x | {g['epsilon_of_that_noise_if_central']:.2f} |"
        )
    lines += [
        "",
        f"Central placement's σ is {g0['central_sigma']:.3f}. A workable share graph "
        "(a few shares per client) sizes each share for a handful of survivors, so the sum "
        "carries many times the noise the guarantee needs.",
        "",
    ]
    return lines


def markdown(result: dict[str, Any], name: str) -> str:
    """The report of ``result`` saved as ``<name>``."""
    arms = result["arms"]
    cfg = result["settings"]
    first = arms[0]
    m = result["machine"]
    lines = [
        "# SecAgg+ cost of the private co-occurrence release over Flower",
        "",
        f"{result['dataset']} ({result['users']} users, {result['items']} items): each client "
        f"releases its users' co-occurrence statistic, {first['entries']:,} entries, in "
        f"slices of `cooccurrence-chunk-size` = {cfg['cooccurrence-chunk-size']:,} entries "
        f"({first['slices_total']} slices), each summed in one SecAgg+ round "
        f"(`user-dp = secagg`, `cooccurrence-epsilon` = {cfg['cooccurrence-epsilon']:g}). "
        "Measured on Flower's simulation engine (Ray, one SuperNode per client) with the "
        "product's ClientApp and Flower's own SecAgg+ workflow and mod, nothing mocked; "
        "the server timed each of Flower's four stages and weighed every message "
        f"(`StageCost`). Share graph `secagg-num-shares` = {cfg['shares']:g}: each client "
        "shares its keys with that many clients (itself included, a ring), t of them must "
        "survive. Below "
        f"{result['users']} clients ML-100K's users are split over the clients; every arm "
        f"releases the same statistic. {result['date']}, {m['cpus']} CPUs ({m['platform']}), "
        f"shared with other jobs (load average before – after each arm in the table), "
        f"{result['wall_s'] / 60:.0f} min in all.",
        "",
        "## Per slice, by the number of clients (measured)",
        "",
        "First slice: Ray's actors start and import the client app during it. Steady slice: "
        "the mean of the measured slices after the first (full-size slices only); the stage "
        "columns are that slice's, the server's own part is the stages' time not spent "
        "waiting for replies. Bytes: the contents of the messages (array data, bytes, "
        "strings, 8 per number; no transport framing), mean over the clients.",
        "",
        *_arm_rows(result, arms),
        "",
        *_bytes_lines(result),
        "## The whole release",
        "",
        *_release_lines(result),
        "",
        *_fit_lines(result),
        *_sweep_lines(result),
        *_thread_lines(result),
        *_window_lines(result),
        *_profile_lines(result),
        *_shamir_lines(result),
        *_graph_lines(result),
        "## Measured and extrapolated",
        "",
        "- Measured: every slice's and stage's seconds in the per-slice table, the bytes, the "
        "peak RSS (sampled every 0.5 s: the driver process, which holds the ServerApp and "
        "Flower's in-memory SuperLink, and the driver with all its child processes, Ray's "
        "workers among them), the Shamir timings, the profile.",
        "- Extrapolated, and said so where they stand: a whole release where fewer slices "
        "were measured (the rest at the steady slice; the last slice is shorter, so this "
        "errs long), the fit's value at a size not run, the every-pair Shamir cost.",
        "- Computed: the share graphs' noise, from the product's functions.",
        "",
        f"Regenerate: `fedrec bench secagg` ({name}.json; `--render-only` re-renders).",
        "",
    ]
    return "\n".join(lines)
