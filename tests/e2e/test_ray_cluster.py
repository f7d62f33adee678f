"""docs/deployment.md §3: a simulation joins a Ray cluster (a head and a worker, 127.0.0.1).

The two Ray nodes are started as the docs say (``ray start --head`` and ``ray start
--address``), each with one CPU; Flower's Ray backend starts one ClientApp actor per CPU of
the cluster, so one of them lives on the worker node. The simulation is the documented
``fedrec simulate --ray-address``. Both Ray processes are this test's own
(``--block``, their own temp dir): stopping them leaves any other Ray on the machine alone.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from fedrec.shared.checkpoint import latest_round
from fedrec.simulations.loopback import free_port, kill_trees, wait_port, write_tiny_ratings

pytestmark = pytest.mark.slow

RAY = Path(sys.executable).with_name("ray")
FEDREC = Path(sys.executable).with_name("fedrec")


def _ray_nodes(address: str, env: dict[str, str]) -> list[dict[str, object]]:
    script = (
        f"import json, ray; ray.init(address={address!r}, logging_level='ERROR'); "
        "print(json.dumps([{'alive': n['Alive'], 'cpus': n['Resources'].get('CPU', 0)} "
        "for n in ray.nodes()]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_a_simulation_runs_on_a_local_ray_head_and_worker(tmp_path: Path) -> None:
    # Prepare: a head and a worker node, one CPU each, as docs/deployment.md starts them.
    port = free_port()
    address = f"127.0.0.1:{port}"
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    common = ["--num-cpus", "1", "--block", "--disable-usage-stats"]
    # Ray's socket paths live under its temp dir and must stay short (a Unix socket path
    # is limited to about a hundred bytes), so not under pytest's long tmp_path.
    ray_tmp = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))
    logs = [(tmp_path / f"ray-{name}.log").open("wb") for name in ("head", "worker")]
    head = subprocess.Popen(
        [
            str(RAY), "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port),
            "--include-dashboard", "false", "--temp-dir", str(ray_tmp), *common,
        ],
        env=env, stdout=logs[0], stderr=subprocess.STDOUT,
    )  # fmt: skip
    started = [head]
    try:
        try:
            wait_port(port, timeout=120)
        except TimeoutError:
            pytest.fail((tmp_path / "ray-head.log").read_text()[-3000:])
        worker = subprocess.Popen(
            [
                str(RAY), "start", "--address", address, "--node-ip-address", "127.0.0.1",
                *common,
            ],
            env=env, stdout=logs[1], stderr=subprocess.STDOUT,
        )  # fmt: skip
        started.append(worker)
        deadline = time.monotonic() + 120
        while True:
            nodes = _ray_nodes(address, env)
            if sum(1 for n in nodes if n["alive"]) >= 2 or time.monotonic() > deadline:
                break
            time.sleep(2)
        assert sum(1 for n in nodes if n["alive"]) == 2, nodes
        ratings = write_tiny_ratings(tmp_path / "ratings.csv", n_users=6, n_items=20, per_user=8)
        # Execute: the documented command, joined to the cluster.
        run = subprocess.run(
            [
                str(FEDREC),
                "simulate",
                "--ray-address",
                address,
                "-c",
                "dataset=generic",
                "-c",
                f"data-path={ratings}",
                "-c",
                "num-rounds=2",
                "-c",
                "text-tower=off",
                "-c",
                "embedding-dim=4",
                "-c",
                f"output-dir={tmp_path / 'runs'}",
                "-c",
                "run-name=ray",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        # Assert: both rounds trained and checkpointed through the cluster's actors.
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        assert latest_round(tmp_path / "runs" / "ray") == 2
        assert all(n["cpus"] == 1 for n in _ray_nodes(address, env))
    finally:
        kill_trees(started)
        for log in logs:
            log.close()
        shutil.rmtree(ray_tmp, ignore_errors=True)
