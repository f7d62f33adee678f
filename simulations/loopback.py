"""What benchmarks and tests on 127.0.0.1 share: free ports, process trees, a tiny data set."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import psutil


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


def process_tree(pid: int) -> list[psutil.Process]:
    """The process ``pid`` and its descendants, children first; none if it is gone."""
    try:
        proc = psutil.Process(pid)
        return [*proc.children(recursive=True), proc]
    except psutil.NoSuchProcess:
        return []


def kill_trees(popens: Sequence[subprocess.Popen[bytes]]) -> None:
    """Kill each started process and everything it started, and wait for them all.

    Whole trees: a wrapper such as ``fedrec node start`` cannot pass a SIGKILL on to its
    SuperNode, and a SuperNode's ClientApps outlive it otherwise.
    """
    everything = [proc for popen in popens for proc in process_tree(popen.pid)]
    for proc in everything:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(everything, timeout=30)
    for popen in popens:
        popen.wait(timeout=30)


def write_tiny_ratings(path: Path, *, n_users: int, n_items: int, per_user: int) -> Path:
    """A seeded ``user,item,rating,timestamp`` CSV where every user has a test item."""
    rng = np.random.default_rng(0)
    rows = ["user,item,rating,timestamp"]
    for u in range(n_users):
        for t, i in enumerate(rng.choice(n_items, per_user, replace=False)):
            rows.append(f"{u},{i},{int(rng.integers(1, 6))},{1000 + t}")
    path.write_text("\n".join(rows) + "\n")
    return path
