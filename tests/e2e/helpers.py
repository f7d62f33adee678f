"""Shared pieces of the end-to-end tests: tiny data sets and runs, Flower CLI invocations."""

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil

from fedrec.simulations.loopback import kill_trees
from fedrec.simulations.loopback import process_tree as process_tree  # the tests' import
from fedrec.simulations.loopback import write_tiny_ratings as write_tiny_ratings

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def tiny_run_settings(
    tmp_path: Path, name: str, *, users: int, num_rounds: int, **extra: object
) -> dict[str, Any]:
    """A run of ``users`` simulated users on one tiny data set (written once per test).

    Runs named differently share the data and seeds but not their output folder, so two
    paths of the same federation can be compared; with ``reproducible-noise`` (for tests
    only) their DP noise is equal too.
    """
    data = tmp_path / "r.csv"
    if not data.exists():
        write_tiny_ratings(data, n_users=users, n_items=30, per_user=10)
    return {
        "dataset": "generic",
        "data-path": str(data),
        "num-rounds": num_rounds,
        "embedding-dim": 4,
        "text-tower": "off",
        "fraction-train": 1.0,
        "reproducible-noise": True,
        "output-dir": str(tmp_path / name),
        "run-name": "r",
        **extra,
    }


def flwr_env(flwr_home: Path) -> dict[str, str]:
    """Environment for Flower's CLI and daemons: this venv, a private FLWR_HOME.

    Runtime dependency installation is off: Flower would otherwise `uv sync` the app's
    dependencies into a fresh environment per run (and fetch a CUDA torch).
    """
    return {
        **os.environ,
        "FLWR_HOME": str(flwr_home),
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
    }


def flwr_run(
    connection: str, run_config: str, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """``flwr run . CONNECTION --stream --run-config ...`` from the repository root."""
    return subprocess.run(
        [str(BIN / "flwr"), "run", ".", connection, "--stream", "--run-config", run_config],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def deploy_run(
    connection: str, run_config: str, env: dict[str, str], *, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``fedrec deploy run CONNECTION --run-config ...`` from the repository root."""
    return subprocess.run(
        [str(BIN / "fedrec"), "deploy", "run", connection, "--run-config", run_config],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class Daemons:
    """Long-running Flower processes started in one folder, each logging to its own file."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.cwd, self.env = cwd, env
        self.logs = cwd / "logs"
        self.logs.mkdir()
        self.started: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *command: str) -> None:
        log = open(self.logs / f"{name}.log", "wb")  # noqa: SIM115 (closed with the process)
        self.started[name] = subprocess.Popen(
            [str(BIN / command[0]), *command[1:]],
            cwd=self.cwd,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def stop(self, *names: str) -> None:
        """Kill the named daemons and what they started (SuperExec, ServerApp, ClientApps)."""
        kill_trees([self.started.pop(name) for name in names])

    def wait(self, name: str, timeout: float) -> int | None:
        """The exit code of a daemon expected to stop by itself; None if it still runs."""
        try:
            return self.started[name].wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def wait_log(self, name: str, text: str, *, after: int, timeout: float = 90) -> None:
        """Wait until ``text`` shows up in a daemon's log past its first ``after`` characters."""
        deadline = time.monotonic() + timeout
        while text not in self.log(name)[after:]:
            if time.monotonic() > deadline:
                raise AssertionError(f"{name} never logged {text!r}" + self.diagnostics())
            time.sleep(1)

    def stop_all(self) -> None:
        """Stop every daemon, then whatever else runs with this test's FLWR_HOME.

        A SuperNode that exited by itself leaves its SuperExec behind until that notices;
        the sweep catches it.
        """
        self.stop(*self.started)
        flwr_home = self.env["FLWR_HOME"]
        left = []
        for proc in psutil.process_iter():
            with contextlib.suppress(psutil.Error):
                if proc.environ().get("FLWR_HOME") == flwr_home:
                    proc.kill()
                    left.append(proc)
        psutil.wait_procs(left, timeout=30)

    def diagnostics(self) -> str:
        return "".join(
            f"\n--- {log.name}\n" + log.read_text(errors="replace")[-1500:]
            for log in sorted(self.logs.iterdir())
        )
