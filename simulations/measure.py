"""Wall time, peak memory and where the threads are, of a benchmark step.

Memory: a process and all its children; threads: this process's, sampled in process.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
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
    the sample of ``peak_bytes``: each process's role, RSS, USS and PSS. ``peak_own_bytes``
    is the watched process alone (a simulation's driver: the ServerApp and Flower's
    in-memory SuperLink), without the workers and daemons it started.

    ``pss = False`` reads RSS alone: PSS makes the kernel walk every mapping of every
    process (``smaps_rollup``), which costs the sampled process real CPU; a benchmark whose
    driver is its bottleneck turns it off.
    """

    def __init__(
        self, interval_s: float = 0.2, *, pid: int | None = None, pss: bool = True
    ) -> None:
        self.interval_s = interval_s
        self.pid = os.getpid() if pid is None else pid
        self.pss = pss
        self.peak_bytes = 0
        self.peak_pss_bytes = 0
        self.peak_own_bytes = 0
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
                info = proc.memory_full_info() if self.pss else proc.memory_info()
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
        own = next((r["rss"] for r in rows if r["pid"] == self.pid), 0)
        self.peak_own_bytes = max(self.peak_own_bytes, own)

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


class ThreadSampler:
    """CPU seconds of each thread of this process over a window, and where it spent them.

    For a process whose threads share one GIL (a Flower simulation's driver: the ServerApp,
    the engine's threads that pump messages to and from the actors, Ray's client side).
    CPU time per thread is the kernel's (``psutil``: user + system per native thread) from
    entering to leaving; *where* is sampled every ``interval_s``: each thread's innermost
    Python frame (a thread blocked in C, a socket or a sleep, shows the function that
    called it, so the samples say where, the CPU seconds say how much). Thread names are
    folded (``Thread-28 (add_messages_to_queue)`` -> ``add_messages_to_queue``;
    ``ThreadPoolExecutor-3_1`` -> ``ThreadPoolExecutor-N_N``): threads of one role add up.
    A thread that ends inside the window is sampled but its CPU seconds are lost (the
    kernel's counters go with it), so it is missing from the CPU table.
    """

    def __init__(self, interval_s: float = 0.02) -> None:
        self.interval_s = interval_s
        self.samples = 0
        self.counts: Counter[tuple[str, str]] = Counter()
        self.roles: dict[int, str] = {}  # native thread id -> role
        self.wall_s = 0.0
        self.cpu_s: dict[str, float] = {}  # CPU seconds per role over the window
        self._cpu: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def role(name: str) -> str:
        """A thread's name without its serial numbers."""
        match = re.fullmatch(r"Thread-\d+ \((.+)\)", name)
        return match.group(1) if match else re.sub(r"\d+", "N", name)

    @staticmethod
    def _cpu_now() -> dict[int, float]:
        return {t.id: t.user_time + t.system_time for t in psutil.Process().threads()}

    def _note_roles(self) -> dict[int | None, str]:
        names: dict[int | None, str] = {}
        for t in threading.enumerate():
            role = self.role(t.name)
            names[t.ident] = role
            if t.native_id is not None:
                self.roles[t.native_id] = role
        return names

    def _run(self) -> None:
        me = threading.get_ident()
        while not self._stop.is_set():
            names = self._note_roles()
            for ident, frame in sys._current_frames().items():
                if ident != me:
                    where = f"{Path(frame.f_code.co_filename).name}:{frame.f_code.co_name}"
                    self.counts[(names.get(ident, "?"), where)] += 1
            self.samples += 1
            self._stop.wait(self.interval_s)

    def __enter__(self) -> ThreadSampler:
        self._note_roles()
        self._cpu = self._cpu_now()
        self._started = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.wall_s = time.perf_counter() - self._started
        self._note_roles()
        after = self._cpu_now()
        for tid, seconds in after.items():
            if self._thread.native_id != tid:
                role = self.roles.get(tid, "other")
                self.cpu_s[role] = self.cpu_s.get(role, 0.0) + seconds - self._cpu.get(tid, 0.0)

    def summary(self, threads: int = 6, functions: int = 3) -> list[dict[str, Any]]:
        """The ``threads`` roles that used the most CPU: seconds, share of the window, where."""
        where: dict[str, Counter[str]] = {}
        for (role, place), n in self.counts.items():
            where.setdefault(role, Counter())[place] += n
        total = max(self.samples, 1)
        return [
            {
                "thread": role,
                "cpu_s": seconds,
                "cpu_share": seconds / max(self.wall_s, 1e-9),
                "where": [
                    {"function": f, "samples": c / total}
                    for f, c in where.get(role, Counter()).most_common(functions)
                ],
            }
            for role, seconds in sorted(self.cpu_s.items(), key=lambda kv: -kv[1])[:threads]
        ]


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
