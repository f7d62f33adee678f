"""The encoder report: encoder latency, local-step cost per arm, one round's cost."""

from __future__ import annotations

from typing import Any

from fedrec.simulations.result_keys import dataset_label


def encoder_markdown(result: dict[str, Any]) -> str:
    """Two tables: latency, and local training cost per arm."""
    m = result["machine"]
    where = m["gpu"] or f"CPU ({m['torch_threads']} threads)"
    data = dataset_label(result["dataset"])
    lines = [
        f"# Encoder and local training cost ({where})",
        "",
        f"Written by `fedrec bench encoder` at {result['created_at']} on {m['platform']}, "
        f"torch {m['torch']}, encoder {result['encoder']}.",
        "",
        "| encoder latency | ms |",
        "| --- | ---: |",
    ]
    lines += [f"| {k} | {v:.2f} |" for k, v in result["latency"].items()]
    lines += [
        "",
        f"One client's local training, 1 epoch, typical {data} users (records near the median):",
        "",
        "| model | DP | clipping | s per client | ms per step | DP overhead | clients |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in result["local_training"]:
        overhead = f"{r['dp_overhead']:.2f}x" if "dp_overhead" in r else ""
        lines.append(
            f"| {r['model']} | {'yes' if r['dp'] else 'no'} | {r['grad_sample_mode']} | "
            f"{r['s_per_client']:.3f} | {r['ms_per_step']:.1f} | {overhead} | {r['clients']} |"
        )
    n = result["local_training"][0]
    lines += [
        "",
        f"Means over the clients shown, users with about {n['records_per_client']:.0f} training "
        "records (the median). A round's compute on one device is about s per client x "
        "clients; DP overhead = DP time / non-DP time of the same model.",
    ]
    rounds = result.get("federated_round") or []
    if rounds:
        r0 = rounds[0]
        lines += [
            "",
            f"One federated round end to end (plain single-process federation, the same client "
            f"and aggregation code as a Flower round), product defaults: record-level DP-SGD "
            f"{'on' if r0['dp'] else 'off'}, {r0['local_epochs']} local epochs, sample rate "
            f"{r0['dp_sample_rate']:g}; the first *clients* {data} users:",
            "",
            "| text tower | clients | round s | s per client | model per client (MB, each "
            "way) | of which text tower (MB) |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for r in rounds:
            lines.append(
                f"| {r['text_tower']} | {r['clients']} | {r['round_s']:.2f} | "
                f"{r['s_per_client']:.2f} | {r['update_bytes'] / 1e6:.2f} | "
                f"{r['text_tower_bytes'] / 1e6:.2f} |"
            )
    return "\n".join(lines) + "\n"


def markdown(result: dict[str, Any], name: str) -> str:
    """The report of ``result`` saved as ``<name>``."""
    return encoder_markdown(result)
