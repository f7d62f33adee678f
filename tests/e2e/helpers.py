"""Shared pieces of the end-to-end tests: tiny data sets and Flower CLI invocations."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 60) -> None:
    """Return once something accepts connections on 127.0.0.1:``port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def write_tiny_ratings(path: Path, *, n_users: int, n_items: int, per_user: int) -> Path:
    """A seeded ``user,item,rating,timestamp`` CSV where every user has a test item."""
    rng = np.random.default_rng(0)
    rows = ["user,item,rating,timestamp"]
    for u in range(n_users):
        for t, i in enumerate(rng.choice(n_items, per_user, replace=False)):
            rows.append(f"{u},{i},{int(rng.integers(1, 6))},{1000 + t}")
    path.write_text("\n".join(rows) + "\n")
    return path


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
