"""Wall time and peak memory of a benchmark step (this process and all its children)."""

from __future__ import annotations

import logging
import os
import platform
import threading
import time
from collections.abc import Callable
from typing import Any

import psutil

logger = logging.getLogger(__name__)


class PeakMemory:
    """Samples the RSS of this process and all its descendants; keeps the maximum."""

    def __init__(self, interval_s: float = 0.2) -> None:
        self.interval_s = interval_s
        self.peak_bytes = 0
        # Proportional set size: shared pages (torch's libraries in every Ray worker) are
        # counted once across the processes instead of once per process.
        self.peak_pss_bytes = 0
        # This process alone (a simulation's driver: the ServerApp and Flower's in-memory
        # SuperLink), without the Ray workers and daemons it started.
        self.peak_own_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> tuple[int, int, int]:
        me = psutil.Process()
        rss = pss = own = 0
        for proc in [me, *me.children(recursive=True)]:
            try:
                info = proc.memory_full_info()
            except psutil.Error:
                continue
            rss += info.rss
            pss += getattr(info, "pss", info.rss)
            if proc is me:
                own = info.rss
        return rss, pss, own

    def _note(self) -> None:
        rss, pss, own = self._sample()
        self.peak_bytes = max(self.peak_bytes, rss)
        self.peak_pss_bytes = max(self.peak_pss_bytes, pss)
        self.peak_own_bytes = max(self.peak_own_bytes, own)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._note()
            self._stop.wait(self.interval_s)

    def __enter__(self) -> PeakMemory:
        self._note()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


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
