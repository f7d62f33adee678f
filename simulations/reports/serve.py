"""The serving report: start-up, latency and throughput, each goal against its measurement."""

from __future__ import annotations

from typing import Any

from fedrec.simulations.result_keys import dataset_label


def _speedup(result: dict[str, Any], kind: str, c: int) -> float:
    rows = {r["concurrency"]: r["rps"] for r in result["throughput"] if r["kind"] == kind}
    return float(rows[c] / rows[min(rows)])


LATENCY_LABELS = {
    "liked": "liked (3 items)",
    "text": "text, each request a new text",
    "text_repeated": "text, asked before",
}
STAGE_LABELS = {
    "encode": "encode the text (its words' parts for the explanation from the same pass)",
    "encode.forward": "... of which the encoder's forward pass",
    "encode.tokenize": "... of which the tokenizer",
    "liked_similarity": "liked items' cosine similarities",
    "scores": "scores of every item",
    "top": "top k",
    "explain_scores": "explanation: the scores without each piece of evidence",
    "explain_pick": "explanation: the piece whose removal lowers each answer most",
    "other": "the rest (lookups, answer entries)",
}


def _model_line(model: dict[str, Any]) -> str:
    size = (
        f"{model['items']} items, {model['embedding_dim']}-wide item vectors, "
        f"{'text towers over the real encoder' if model['text_towers'] else 'no text towers'}"
    )
    if model.get("kind") == "cooccurrence":
        data = dataset_label(model["dataset"])
        # An empty data path is the data set fedrec ships (shared/data/load.py).
        source = data if model["data_path"] else f"the embedded {data}"
        return (
            f"Model: the served default, a co-occurrence checkpoint (`fedrec train-cooccurrence` "
            f"on {source}, user-dp {model.get('user_dp')}, item model "
            f"{model.get('item_model')}; the private release serves at the same cost): {size}."
        )
    return f"Model: a hybrid checkpoint with synthetic titles: {size}."


def _settings_lines(result: dict[str, Any]) -> list[str]:
    rows = result.get("settings") or []
    if not rows:
        return []
    main = [r for r in result["throughput"] if r["kind"] == "text"]
    ends = {r["concurrency"] for r in rows}
    defaults = {"compute_threads": 1, "encoder_passes": 1}
    lines = [
        "",
        "Text requests at other service settings (`FEDREC_COMPUTE_THREADS`: threads per "
        "operation, 0 the libraries' own pools of one thread per core; "
        "`FEDREC_ENCODER_PASSES`: encoder passes at once); the first rows are the defaults, "
        "from the table above:",
        "",
        "| compute threads | encoder passes | concurrency | requests/s | p50 ms | p99 ms "
        "| requests |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in [{**defaults, **m} for m in main if m["concurrency"] in ends] + rows:
        lines.append(
            f"| {r['compute_threads']} | {r['encoder_passes']} | {r['concurrency']} | "
            f"{r['rps']:.1f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['requests']} |"
        )
    return lines


def _profile_lines(result: dict[str, Any]) -> list[str]:
    profile = result.get("profile")
    if not profile:
        return []
    kinds = list(profile)
    lines = [
        "",
        "Where one request's time goes, in process (the serving model alone, no HTTP; "
        + ", ".join(
            f"{k}: {profile[k]['mean_ms']:.2f} ms a request over {profile[k]['requests']}"
            for k in kinds
        )
        + "). Each stage's mean ms a request under cProfile (which slows Python code more "
        "than the encoder's kernels), and its share of the profiled request:",
        "",
        "| stage | " + " | ".join(f"{k} ms | {k} share" for k in kinds) + " |",
        "| --- | " + " | ".join("---: | ---:" for _ in kinds) + " |",
    ]
    for key, label in STAGE_LABELS.items():
        cells = []
        for k in kinds:
            ms = profile[k]["stages_ms"].get(key, 0.0)
            share = ms / profile[k]["profiled_mean_ms"] if profile[k]["profiled_mean_ms"] else 0
            cells.append(f"{ms:.2f} | {share:.0%}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append(
        "| profiled request | "
        + " | ".join(f"{profile[k]['profiled_mean_ms']:.2f} | 100%" for k in kinds)
        + " |"
    )
    return lines


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
        )
        + (
            " The service kept Python's bytecode cache, as `make` runs it: a start does not"
            " compile its libraries again."
            if m.get("service_bytecode_cache")
            else ""
        ),
        "",
        _model_line(result["model"]),
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
        f"| {LATENCY_LABELS.get(kind, kind)} | {v['p50_ms']:.2f} | {v['p99_ms']:.2f} | "
        f"{v['mean_ms']:.2f} | {v['requests']} |"
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
    lines += _settings_lines(result)
    lines += _profile_lines(result)
    lines += ["", "| goal | target | measured | met |", "| --- | ---: | ---: | --- |"]
    labels = {
        "liked_p99_ms_c1": ("liked-items p99 at concurrency 1 (ms)", "<="),
        "text_p99_ms_c1": ("text p99 at concurrency 1, new texts (ms)", "<="),
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
