"""Shared pieces of the end-to-end tests: tiny data sets and runs, Flower CLI invocations."""

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil

from fedrec.simulations.loopback import free_port, kill_trees
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

    def kill_supervised(self, name: str) -> None:
        """SIGKILL the process a supervisor daemon runs (``fedrec node start``'s SuperNode)
        and everything it started, as a crash would; the supervisor itself lives on."""
        (child,) = psutil.Process(self.started[name].pid).children()
        for proc in process_tree(child.pid):
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()

    def run(self, *command: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run a command of this venv to its end in the daemons' folder and environment."""
        return subprocess.run(
            [str(BIN / command[0]), *command[1:]],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def ok(self, *command: str, timeout: float = 120) -> str:
        """:meth:`run`, which must succeed; its output."""
        out = self.run(*command, timeout=timeout)
        assert out.returncode == 0, f"{command}\n{out.stdout}{out.stderr}" + self.diagnostics()
        return out.stdout

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

    def diagnostics(self, tail: int = 1500) -> str:
        """The last ``tail`` characters of every daemon's log."""
        return "".join(
            f"\n--- {log.name}\n" + log.read_text(errors="replace")[-tail:]
            for log in sorted(self.logs.iterdir())
        )

    def connect(self, name: str, port: int, *, root_certificates: Path | None = None) -> None:
        """Flower's config.toml with one default connection, over TLS when a CA is given
        (``flwr`` wants its path absolute), else ``insecure``."""
        home = Path(self.env["FLWR_HOME"])
        home.mkdir(exist_ok=True)  # the SuperLink may have made it
        security = (
            f'root-certificates = "{root_certificates.resolve()}"\n'
            if root_certificates is not None
            else "insecure = true\n"
        )
        (home / "config.toml").write_text(
            f'[superlink]\ndefault = "{name}"\n\n[superlink.{name}]\n'
            f'address = "127.0.0.1:{port}"\n{security}'
        )

    def supernodes(self, connection: str) -> list[dict[str, Any]]:
        """``flwr supernode list CONNECTION --format json``: the nodes the SuperLink knows."""
        out = self.ok("flwr", "supernode", "list", connection, "--format", "json")
        return list(json.loads(out)["nodes"])

    def wait_online(self, connection: str, node_ids: Sequence[str], timeout: float = 90) -> None:
        """Wait until every one of ``node_ids`` (as `list` gives them: strings) is online."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            online = {n["node-id"] for n in self.supernodes(connection) if n["status"] == "online"}
            if online >= set(node_ids):
                return
            time.sleep(1)
        raise AssertionError(f"nodes {node_ids} never all came online" + self.diagnostics())


def tls_superlink(port: int) -> tuple[str, ...]:
    """docs/deployment.md's SuperLink command: TLS from `fedrec certs`, SuperNode
    authentication, a database; on 127.0.0.1:``port``, paths relative to the working folder."""
    return (
        "flower-superlink",
        "--ssl-ca-certfile",
        "certs/ca/ca.crt",
        "--ssl-certfile",
        "certs/superlink/server.crt",
        "--ssl-keyfile",
        "certs/superlink/server.key",
        "--enable-supernode-auth",
        "--database",
        "superlink.db",
        "--disable-runtime-dependency-installation",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    )


def tls_supernode(port: int, key: str, *extra: str) -> tuple[str, ...]:
    """docs/deployment.md's SuperNode command for node key ``key`` (its own local port)."""
    return (
        "flower-supernode",
        "--root-certificates",
        "certs/ca/ca.crt",
        "--superlink",
        f"127.0.0.1:{port}",
        "--auth-supernode-private-key",
        f"certs/nodes/{key}.key",
        "--port",
        str(free_port()),
        *extra,
    )


def own_data(
    daemons: Daemons, ratings: Path, nodes: Sequence[str], *, n_items: int
) -> dict[str, list[str]]:
    """docs/deployment.md, "Node-local data and feedback", for ``nodes``: the server's
    catalogue (``catalog.json``) and each node's own users (user u on node u mod n) in
    ``NODE/data``, imported with `fedrec node`. The ratings file is deleted: nobody holds
    all ratings, not the server, not the nodes. Returns each user's items."""
    lines = ratings.read_text().splitlines()
    rows = [row.split(",") for row in lines[1:]]
    items = daemons.cwd / "items.csv"
    items.write_text("item,title\n" + "".join(f"{i},Item {i}\n" for i in range(n_items)))
    daemons.ok("fedrec", "catalog", "--items", "items.csv", "--out", "catalog.json")
    for k, node in enumerate(nodes):
        history = daemons.cwd / "history.csv"
        mine = [
            line for line, row in zip(lines[1:], rows, strict=True) if int(row[0]) % len(nodes) == k
        ]
        history.write_text("\n".join([lines[0], *mine]) + "\n")
        daemons.ok("fedrec", "node", "catalog", "--data-dir", f"{node}/data", "catalog.json")
        daemons.ok(
            "fedrec", "node", "import", "--data-dir", f"{node}/data", "history.csv",
            "--hold-out-newest",
        )  # fmt: skip
        history.unlink()  # the device's history is in its store now
    ratings.unlink()
    seen: dict[str, list[str]] = {}
    for user, item, *_ in rows:
        seen.setdefault(user, []).append(item)
    return seen
