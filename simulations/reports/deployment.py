"""The deployed-round report (``fedrec bench deployment``): a round's cost, split.

The measurement is :mod:`fedrec.simulations.bench_deployment`; every number here, the
Flower release included, is read from its result.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any


def _median(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


MESSAGES_PER_ROUND = {"subprocess": 1, "process": 1, "secagg": 4}
ARM_LABELS = {
    "subprocess": "`--isolation subprocess` (default)",
    "process": "`--isolation process` + `flower-superexec`",
    "secagg": "`--isolation subprocess`, `user-dp = secagg`",
}


def _isolation_sentence(result: dict[str, Any]) -> str:
    """How the two isolation modes compare, from the measured medians."""
    medians = {
        arm["isolation"]: _median([r["seconds"] for r in arm["rounds"]]) for arm in result["arms"]
    }
    sub, proc = medians.get("subprocess"), medians.get("process")
    if not sub or not proc:
        return ""
    ratio = proc / sub
    verdict = (
        "the two modes cost the same"
        if abs(ratio - 1) < 0.15
        else f"a round with `--isolation process` took {ratio:.2f}x as long"
    )
    return f" Measured here {verdict} ({proc:.1f} s against {sub:.1f} s a round)."


def _minor_version(version: str) -> str:
    """``"1.42"`` of ``"1.42.0"``: the release the statements about Flower were measured on."""
    return ".".join(version.split(".")[:2])


def deployment_markdown(result: dict[str, Any]) -> str:
    """One row per arm: a round's median seconds, the clients' training, the rest."""
    m, s = result["machine"], result["settings"]
    start = result["clientapp_start"]["median_s"]
    lines = [
        "# Deployment: what a deployed round costs on a node",
        "",
        f"Written by `fedrec bench deployment` at {result['created_at']} on {m['platform']} "
        f"({m['cpus']} CPUs), Python {m['python']}, Flower {result['flwr_version']}. A "
        f"SuperLink and {s['nodes']} SuperNodes on 127.0.0.1 (`--insecure`), "
        f"{s['rounds']} rounds each, every node training {s['users'] // s['nodes']} users "
        f"of {s['interactions_per_user']} interactions over {s['items']} items: the training "
        "is tiny on purpose, so that what a round costs besides it shows. Load average "
        f"(1, 5, 15 min) before: {', '.join(f'{x:.2f}' for x in m['load_avg_before'])}; "
        f"after: {', '.join(f'{x:.2f}' for x in m['load_avg_after'])}"
        + (" -- the machine was busy: upper bounds." if m["load_avg_before"][0] > 1 else "."),
        "",
        "| nodes run as | messages per node and round | round, median (s) | clients' "
        "training, median (s) | the rest (s) |",
        "|---|---:|---:|---:|---:|",
    ]
    for arm in result["arms"]:
        seconds = _median([r["seconds"] for r in arm["rounds"]])
        train = _median([r["client_seconds"] for r in arm["rounds"]])
        rest = "" if train is None or seconds is None else f"{seconds - train:.1f}"
        lines.append(
            f"| {ARM_LABELS[arm['isolation']]} | {MESSAGES_PER_ROUND[arm['isolation']]} | "
            f"{seconds:.1f} | {'' if train is None else f'{train:.2f}'} | {rest} |"
        )
    samples = ", ".join(f"{x:.1f}" for x in result["clientapp_start"]["samples_s"])
    lines += [
        "",
        f"Starting a ClientApp process alone (a fresh interpreter importing what "
        f"`flwr-clientapp` and fedrec's ClientApp import: torch, Opacus, fedrec) took "
        f"{start:.1f} s (median of {samples} s). Flower starts one for every message a node "
        "receives, in both isolation modes: with `--isolation process` the SuperExec the "
        "operator starts still runs one `flwr-clientapp` per message (Flower "
        f"{_minor_version(result['flwr_version'])} has no long-lived ClientApp)."
        + _isolation_sentence(result),
        "",
        "The clients' training is the time each client's train handler took (loading its "
        "data, building the model, training); the rest is everything else in the round: "
        "starting the ClientApp process, installing the app's FAB, the SuperNode's and the "
        "server's polling, transport.",
        "",
        "Under `user-dp = secagg` a round is four messages per node (SecAgg+'s stages), each "
        "a process start. Clients under DP report no training time, so that row has no "
        "split. Round times are the server's (from the start of a round to its checkpoint), "
        "from the run's checkpoint history.",
        "",
    ]
    return "\n".join(lines)


def markdown(result: dict[str, Any], name: str) -> str:
    """The report of ``result`` saved as ``<name>``."""
    return deployment_markdown(result)
