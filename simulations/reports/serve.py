"""The serving report: start-up, latency and throughput, each goal against its measurement."""

from __future__ import annotations

from typing import Any


def _speedup(result: dict[str, Any], kind: str, c: int) -> float:
    rows = {r["concurrency"]: r["rps"] for r in result["throughput"] if r["kind"] == kind}
    return float(rows[c] / rows[min(rows)])


def serve_markdown(result: dict[str, Any]) -> str:
    """Start-up, latency and throughput tables, and each goal against its measurement."""
    m, goals = result["machine"], result["goals"]
    lat = result["latency"]
    top_c = max(r["concurrency"] for r in result["throughput"])
    startup_1000 = max(
        (
            s["seconds"]
            for s in result["startup"]
            if s["added_items"] > 0 and s["start"] == "restart"
        ),
        default=float("nan"),
    )
    measured = {
        "liked_p99_ms_c1": lat["liked"]["p99_ms"],
        "text_p99_ms_c1": lat["text"]["p99_ms"],
        "text_speedup_c8": _speedup(result, "text", top_c),
        "startup_s_1000_added": startup_1000,
    }
    lines = [
        "# Serving: start-up, latency and throughput (HTTP on loopback)",
        "",
        f"Written by `fedrec bench serve` at {result['created_at']} on {m['platform']} "
        f"({m['cpus']} CPUs), Python {m['python']}. The service ran as its own process; the "
        f"load generator in another, on the same CPUs. Load average (1, 5, 15 min) before: "
        f"{', '.join(f'{x:.2f}' for x in m['load_avg_before'])}; after: "
        f"{', '.join(f'{x:.2f}' for x in m['load_avg_after'])}"
        + (
            " -- the machine was not idle, so latencies are upper bounds."
            if max(m["load_avg_before"][:1]) > 0.5
            else "."
        ),
        "",
        f"Model: a hybrid checkpoint of {result['model']['items']} items, "
        f"{result['model']['embedding_dim']} factors, text towers over the real encoder.",
        "",
        "| start-up to ready | added items | s |",
        "| --- | ---: | ---: |",
    ]
    lines += [
        f"| {s['start']} start | {s['added_items']} | {s['seconds']:.2f} |"
        for s in result["startup"]
    ]
    lines += [
        "",
        "A restart is the usual case: an item added through the API has its text embedding "
        "stored as it is added. A first start meets a journal whose texts were never encoded "
        "here (e.g. copied from another machine) and encodes them all once.",
        "",
        "| cold start, concurrency 1 | p50 ms | p99 ms | mean ms | requests |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {kind} | {v['p50_ms']:.2f} | {v['p99_ms']:.2f} | {v['mean_ms']:.2f} | {v['requests']} |"
        for kind, v in lat.items()
    ]
    lines += [
        "",
        "| throughput | concurrency | requests/s | x concurrency 1 | p50 ms | p99 ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {r['kind']} | {r['concurrency']} | {r['rps']:.1f} | "
        f"{_speedup(result, r['kind'], r['concurrency']):.2f}x | {r['p50_ms']:.2f} | "
        f"{r['p99_ms']:.2f} |"
        for r in result["throughput"]
    ]
    lines += ["", "| goal | target | measured | met |", "| --- | ---: | ---: | --- |"]
    labels = {
        "liked_p99_ms_c1": ("liked-items p99 at concurrency 1 (ms)", "<="),
        "text_p99_ms_c1": ("text p99 at concurrency 1 (ms)", "<="),
        "text_speedup_c8": (f"text throughput at concurrency {top_c} / 1", ">="),
        "startup_s_1000_added": ("start-up with the added items, restart (s)", "<="),
    }
    for key, (label, op) in labels.items():
        value, target = measured[key], goals[key]
        met = value <= target if op == "<=" else value >= target
        lines.append(f"| {label} | {op} {target:g} | {value:.2f} | {'yes' if met else 'no'} |")
    return "\n".join(lines) + "\n"


def markdown(result: dict[str, Any], name: str) -> str:
    """The report of ``result`` saved as ``<name>``."""
    return serve_markdown(result)
