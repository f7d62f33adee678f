"""Concurrent encoder calls combined into one forward pass."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np

X = TypeVar("X")  # what a run says of each text besides its row (e.g. whether it was cut)


@dataclass
class _Job(Generic[X]):
    texts: list[str]
    result: tuple[np.ndarray, list[X]] | None = None
    error: BaseException | None = None
    taken: bool = False  # a pass has it
    done: bool = False


class Batcher(Generic[X]):
    """Concurrent encoder calls combined into one forward pass.

    A caller that finds fewer than ``passes`` passes running runs every call queued by then
    in one batch and hands each its rows; the others wait for theirs. A lone caller runs at
    once (no added wait), and under load the batch grows with the queue. ``slots`` (a lock,
    or a semaphore of as many passes) is shared by every batcher of one encoder and bounds
    its passes at once: on a machine of several cores, two single-threaded passes use two.
    """

    def __init__(
        self,
        run: Callable[[list[str]], tuple[np.ndarray, list[X]]],
        slots: AbstractContextManager[Any],
        *,
        passes: int = 1,
    ) -> None:
        if passes < 1:
            raise ValueError(f"passes must be >= 1, got {passes}")
        self._run = run
        self._slots = slots
        self._passes = passes
        self._cond = threading.Condition()
        self._queue: list[_Job[X]] = []
        self._running = 0

    def __call__(self, texts: Sequence[str]) -> tuple[np.ndarray, list[X]]:
        """``run(texts)``'s rows for these texts, run in a batch with whatever else is queued."""
        job: _Job[X] = _Job(list(texts))
        batch: list[_Job[X]] = []
        with self._cond:
            self._queue.append(job)
            while not job.taken and self._running >= self._passes:
                self._cond.wait()
            if not job.taken:  # a pass is free: run everything queued
                batch, self._queue = self._queue, []
                for j in batch:
                    j.taken = True
                self._running += 1
        if batch:
            try:
                with self._slots:
                    emb, extra = self._run([t for j in batch for t in j.texts])
                start = 0
                for j in batch:
                    end = start + len(j.texts)
                    j.result = (emb[start:end], extra[start:end])
                    start = end
            except BaseException as err:  # every caller of the batch hears of it
                for j in batch:
                    j.error = err
            finally:
                with self._cond:
                    for j in batch:
                        j.done = True
                    self._running -= 1
                    self._cond.notify_all()
        else:
            with self._cond:
                while not job.done:
                    self._cond.wait()
        if job.error is not None:
            raise job.error
        assert job.result is not None
        return job.result
