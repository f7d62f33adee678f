"""Deployment benchmark: what a deployed round costs, and how much of it is process start-up.

A SuperLink and ``nodes`` SuperNodes on 127.0.0.1 (``--insecure``), one `flwr run` of
``rounds`` rounds on a tiny data set, so that the clients' own training is a small part of
a round and what remains shows: Flower 1.42 starts a fresh ``flwr-clientapp`` process for
every message a node receives, which imports torch, Opacus and fedrec before it can train.

Arms (``isolation``):

- ``subprocess``: the SuperNode's default; it runs its own SuperExec, which starts one
  ``flwr-clientapp`` per message.
- ``process``: ``flower-supernode --isolation process`` with a ``flower-superexec`` the
  operator starts; that SuperExec also starts one ``flwr-clientapp`` per message
  (Flower 1.42 offers no long-lived ClientApp), so the arm checks that it costs the same.
- ``secagg``: the ``subprocess`` arm under ``user-dp = secagg``: four messages per node
  and round (SecAgg+'s stages), so four process starts.

Without DP (the first two arms) each client reports the seconds its train handler took
(its data, the model, the training), so a round splits into that and the rest (starting
the ClientApp process, installing the FAB, polling, transport). The start-up alone is
measured too: a fresh interpreter importing what ``flwr-clientapp`` and fedrec's ClientApp
import. The result records the load average: on a shared machine the numbers are upper
bounds.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fedrec.shared.checkpoint import load_checkpoint
from fedrec.shared.deploy.runs import follow, submit
from fedrec.simulations.loopback import free_port as _free_port
from fedrec.simulations.loopback import kill_trees, write_tiny_ratings
from fedrec.simulations.loopback import wait_port as _wait_port
from fedrec.simulations.measure import machine_stamp
from fedrec.simulations.report import save

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ARMS = ("subprocess", "process", "secagg")
IMPORTS = "import flwr.supernode.runtime.run_clientapp, fedrec.client.client_app"


def clientapp_start_seconds(repeats: int) -> list[float]:
    """Wall seconds of a fresh interpreter importing what a ClientApp process imports."""
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", IMPORTS], check=True)
        out.append(time.perf_counter() - t0)
    return out


@contextlib.contextmanager
def _daemons(logs: Path, env: dict[str, str]) -> Iterator[Callable[..., None]]:
    """Start long-running processes (logging to files); kill them and their children after."""
    logs.mkdir(parents=True, exist_ok=True)
    started: list[subprocess.Popen[bytes]] = []

    def start(name: str, *command: str) -> None:
        log = open(logs / f"{name}.log", "wb")  # noqa: SIM115 (closed with the process)
        started.append(
            subprocess.Popen([str(BIN / command[0]), *command[1:]], env=env, stdout=log, stderr=log)
        )

    try:
        yield start
    finally:
        kill_trees(started)


def run_arm(
    isolation: str, *, workdir: Path, nodes: int, rounds: int, data: Path, timeout: float
) -> dict[str, Any]:
    """One deployed run of ``rounds`` rounds; the rounds' seconds from its checkpoint."""
    env = {
        **os.environ,
        "FLWR_HOME": str(workdir / "flwr-home"),
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
    }
    link = _free_port()
    runs = workdir / "runs"
    settings = (
        f"num-rounds={rounds} dataset='generic' data-path='{data}' output-dir='{runs}' "
        f"run-name='bench' fraction-train=1.0 min-train-nodes={nodes} embedding-dim=8 "
        "text-tower='off' federated-evaluation='off' "
    )
    if isolation == "secagg":
        settings += "user-dp='secagg' user-clip=0.5 user-noise-multiplier=0.5"
    else:
        settings += "dp-enabled=false"
    with _daemons(workdir / "logs", env) as start:
        start("superlink", "flower-superlink", "--insecure", "--host", "127.0.0.1",
              "--port", str(link))  # fmt: skip
        _wait_port(link)
        for k in range(nodes):
            runtime = _free_port()
            node_config = (
                f"partition-id={k} num-partitions={nodes} "
                f"state-dir='{workdir / f'state-{k}'}' state-key-file='{workdir / 'key'}'"
            )
            node = ["flower-supernode", "--insecure", "--superlink", f"127.0.0.1:{link}",
                    "--port", str(runtime), "--node-config", node_config]  # fmt: skip
            if isolation == "process":
                node += ["--isolation", "process"]
            start(f"supernode-{k}", *node)
            if isolation == "process":
                _wait_port(runtime)
                start(f"superexec-{k}", "flower-superexec", "--insecure",
                      "--runtime-api-address", f"127.0.0.1:{runtime}")  # fmt: skip
        home = Path(env["FLWR_HOME"])
        home.mkdir(parents=True, exist_ok=True)
        (home / "config.toml").write_text(
            f'[superlink]\ndefault = "bench"\n\n[superlink.bench]\n'
            f'address = "127.0.0.1:{link}"\ninsecure = true\n'
        )
        t0 = time.perf_counter()
        run_id = submit(str(ROOT), "bench", run_config=settings, env=env)
        outcome = follow(run_id, "bench", env=env, stream=False, timeout=timeout)
        wall = time.perf_counter() - t0
    if not outcome.ok:
        raise RuntimeError(f"{isolation}: run {run_id} ended {outcome.status}: {outcome.details}")
    history = load_checkpoint(runs / "bench").manifest["history"]
    rows = [
        {
            "round": int(r["round"]),
            "seconds": float(r["seconds"]),
            "client_seconds": float(r["client-seconds-mean"])
            if "client-seconds-mean" in r
            else None,
            "clients_ok": int(r.get("clients-ok", 0)),
        }
        for r in history
    ]
    return {"isolation": isolation, "run_wall_s": wall, "rounds": rows}


def run_deployment_benchmark(
    *,
    output_dir: Path,
    runs_dir: Path,
    name: str = "deployment",
    arms: Sequence[str] = ARMS,
    nodes: int = 2,
    rounds: int = 3,
    repeats: int = 3,
    timeout: float = 900.0,
    progress: Callable[[str], None] = lambda message: None,
) -> dict[str, Any]:
    """Measure every arm, then write ``name``.json and ``name``.md under ``output_dir``."""
    unknown = set(arms) - set(ARMS)
    if unknown:
        raise ValueError(f"unknown arms {sorted(unknown)}; choose from {', '.join(ARMS)}")
    from flwr import __version__ as flwr_version

    from fedrec.client.sealing import write_key_file

    load_before = list(os.getloadavg())
    progress("ClientApp start-up: a fresh interpreter importing what flwr-clientapp imports")
    starts = clientapp_start_seconds(repeats)
    users, items, per_user = 2 * nodes, 20, 10
    results = []
    for arm in arms:
        workdir = runs_dir / f"deployment-{arm}-{int(time.time())}"
        workdir.mkdir(parents=True)
        write_key_file(workdir / "key")
        data = write_tiny_ratings(
            workdir / "ratings.csv", n_users=users, n_items=items, per_user=per_user
        )
        progress(f"arm {arm}: {nodes} SuperNodes, {rounds} rounds")
        results.append(
            run_arm(arm, workdir=workdir, nodes=nodes, rounds=rounds, data=data, timeout=timeout)
        )
    result = {
        "created_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": {
            **machine_stamp(),
            "load_avg_before": load_before,
            "load_avg_after": list(os.getloadavg()),
        },
        "flwr_version": flwr_version,
        "settings": {
            "nodes": nodes,
            "rounds": rounds,
            "users": users,
            "items": items,
            "interactions_per_user": per_user,
            "repeats": repeats,
        },
        "clientapp_start": {"samples_s": starts, "median_s": statistics.median(starts)},
        "arms": results,
    }
    write_report(result, output_dir, name)
    return result


def write_report(result: dict[str, Any], output_dir: Path, name: str) -> None:
    """Write the JSON and its Markdown rendering (through the report base)."""
    save(result, output_dir, name, kind="deployment")
