"""Wall time and peak memory of a benchmark step (a process and all its children)."""

from __future__ import annotations

import json
import logging
import os
import platform
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import psutil

logger = logging.getLogger(__name__)

# What a process of a simulation is, from its title or executable (Ray renames its
# processes), then from the script it runs. The first match wins: a Ray worker's command
# line names the raylet's socket too.
_TITLES = (
    ("ray::ClientAppActor", "worker (ClientAppActor)"),
    ("ray::IDLE", "Ray idle worker"),
    ("ray::DashboardAgent", "Ray dashboard agent"),
    ("ray::RuntimeEnvAgent", "Ray runtime-env agent"),
    ("gcs_server", "Ray GCS"),
    ("raylet", "Ray raylet"),
)
_SCRIPTS = (
    ("log_monitor.py", "Ray log monitor"),
    ("dashboard/dashboard.py", "Ray dashboard head"),
    ("dashboard/agent.py", "Ray dashboard agent"),
    ("runtime_env/agent/main.py", "Ray runtime-env agent"),
    ("monitor.py", "Ray autoscaler monitor"),
    ("default_worker.py", "Ray worker (starting)"),
)


def process_role(proc: psutil.Process, root: int) -> str:
    """What ``proc`` is in a simulation whose first process is ``root``."""
    if proc.pid == root:
        return "driver (server, SuperLink, simulation engine)"
    try:
        command, name = proc.cmdline(), proc.name()
    except psutil.Error:
        return "ended"
    title = command[0] if command else name
    for key, role in _TITLES:
        if key in title or key in name:
            return role
    line = " ".join(command)
    for key, role in _SCRIPTS:
        if key in line:
            return role
    return name


class PeakMemory:
    """Samples the memory of a process and all its descendants; keeps the maximum.

    ``pid``: the process tree to watch (default: this process's). ``peak_bytes`` is the
    largest sum of RSS over the tree: a page several processes share (torch's libraries in
    every Ray worker, Ray's object store) is counted once per process. ``peak_pss_bytes``
    counts shared pages once in all (proportional set size). ``processes`` is the tree at
    the sample of ``peak_bytes``: each process's role, RSS, USS and PSS.
    """

    def __init__(self, interval_s: float = 0.2, *, pid: int | None = None) -> None:
        self.interval_s = interval_s
        self.pid = os.getpid() if pid is None else pid
        self.peak_bytes = 0
        self.peak_pss_bytes = 0
        self.processes: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> list[dict[str, Any]]:
        try:
            root = psutil.Process(self.pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.Error:
            return []
        rows = []
        for proc in tree:
            try:
                info = proc.memory_full_info()
            except psutil.Error:
                continue
            rows.append(
                {
                    "pid": proc.pid,
                    "role": process_role(proc, self.pid),
                    "rss": info.rss,
                    "uss": getattr(info, "uss", info.rss),
                    "pss": getattr(info, "pss", info.rss),
                }
            )
        return rows

    def _record(self, rows: list[dict[str, Any]]) -> None:
        rss = sum(r["rss"] for r in rows)
        if rss > self.peak_bytes:
            self.peak_bytes, self.processes = rss, rows
        self.peak_pss_bytes = max(self.peak_pss_bytes, sum(r["pss"] for r in rows))

    def _run(self) -> None:
        while not self._stop.is_set():
            self._record(self._sample())
            self._stop.wait(self.interval_s)

    def breakdown_mib(self) -> list[dict[str, Any]]:
        """``processes`` in MiB, largest RSS first."""
        rows = sorted(self.processes, key=lambda r: -r["rss"])
        return [
            {"role": r["role"], **{k: r[k] / 2**20 for k in ("rss", "uss", "pss")}} for r in rows
        ]

    def __enter__(self) -> PeakMemory:
        self._record(self._sample())
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def import_rss(modules: Sequence[str]) -> dict[str, float]:
    """RSS, USS and PSS (MiB) of a fresh interpreter once it has imported ``modules``."""
    code = (
        "import json, psutil\n"
        + "".join(f"import {m}\n" for m in modules)
        + "i = psutil.Process().memory_full_info()\n"
        "print(json.dumps({k: getattr(i, k, i.rss) / 2**20 for k in ('rss', 'uss', 'pss')}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return {k: float(v) for k, v in json.loads(out.stdout.strip().splitlines()[-1]).items()}


def measure(name: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run ``fn``; add ``wall_s`` and ``peak_rss_mib`` to the dict it returns."""
    logger.info("benchmark arm: %s", name)
    t0 = time.perf_counter()
    with PeakMemory() as mem:
        out = fn()
    out["wall_s"] = time.perf_counter() - t0
    out["peak_rss_mib"] = mem.peak_bytes / 2**20
    logger.info("%s: %.1fs, peak %.0f MiB", name, out["wall_s"], out["peak_rss_mib"])
    return out


def machine_stamp() -> dict[str, Any]:
    """What a benchmark ran on: CPU count, platform and Python (its JSON's ``machine``)."""
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
