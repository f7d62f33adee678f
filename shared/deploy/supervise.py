"""Keep a daemon running: restart it with exponential back-off when it exits with an error.

A SuperNode killed mid-run and started again at once is turned away while the SuperLink
still counts the old connection as alive (Flower 1.42 stops it with "Failed to activate
SuperNode", status 1) and does not retry that itself; its own ``--max-retries`` /
``--max-wait-time`` only cover a SuperLink that cannot be reached. :func:`supervise`
starts it again after 1, 2, 4, ... seconds (capped) until the SuperLink takes it back.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import FrameType


@dataclass(frozen=True)
class Backoff:
    """How long to wait before each restart: ``first`` doubling up to ``most`` seconds.

    A process that ran ``stable`` seconds or more before exiting starts the sequence over:
    it had been accepted, so the next failure is a new one.
    """

    first: float = 1.0
    most: float = 60.0
    stable: float = 60.0

    def __post_init__(self) -> None:
        if not 0 < self.first <= self.most:
            raise ValueError(f"back-off needs 0 < first <= most, got {self.first}, {self.most}")


def supervise(
    command: Sequence[str],
    *,
    backoff: Backoff = Backoff(),
    max_restarts: int | None = None,
    notify: Callable[[str], None] = lambda line: None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Run ``command`` until it exits 0 or is stopped; restart it when it fails.

    Returns the last exit status. SIGTERM and SIGINT are passed on to the running process
    and end the supervision. ``max_restarts`` ``None``: no limit.
    """
    stopping: list[int] = []
    current: list[subprocess.Popen[bytes]] = []

    def forward(signum: int, frame: FrameType | None) -> None:
        stopping.append(signum)
        if current and current[-1].poll() is None:
            current[-1].send_signal(signum)

    saved = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        restarts, delay = 0, backoff.first
        while True:
            started = clock()
            current[:] = [subprocess.Popen(list(command))]
            status = current[-1].wait()
            if status == 0 or stopping:
                return status
            if max_restarts is not None and restarts >= max_restarts:
                notify(f"{command[0]} exited with status {status}; no restarts left")
                return status
            if clock() - started >= backoff.stable:
                delay = backoff.first
            restarts += 1
            notify(f"{command[0]} exited with status {status}; restart {restarts} in {delay:g} s")
            sleep(delay)
            if stopping:
                return status
            delay = min(delay * 2, backoff.most)
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)
