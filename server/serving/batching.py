"""Concurrent encoder calls combined into one forward pass."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass
class _Job:
    texts: list[str]
    result: tuple[np.ndarray, list[bool]] | None = None
    error: BaseException | None = None
    done: bool = False


class Batcher:
    """Concurrent encoder calls combined into one forward pass.

    The first caller to find the encoder idle runs every call queued by then in one batch
    and hands each its rows; the others wait for theirs. A lone caller runs at once (no
    added wait), and under load the batch grows with the queue. ``lock`` is shared by
    every batcher of one encoder: the tokenizer and the weights serve one pass at a time.
    """

    def __init__(
        self, run: Callable[[list[str]], tuple[np.ndarray, list[bool]]], lock: threading.Lock
    ) -> None:
        self._run = run
        self._lock = lock
        self._cond = threading.Condition()
        self._queue: list[_Job] = []
        self._running = False

    def __call__(self, texts: Sequence[str]) -> tuple[np.ndarray, list[bool]]:
        """``run(texts)``'s rows for these texts, run in a batch with whatever else is queued."""
        job = _Job(list(texts))
        with self._cond:
            self._queue.append(job)
            while not job.done and self._running:
                self._cond.wait()
            if not job.done:  # the encoder is idle: run everything queued
                batch, self._queue, self._running = self._queue, [], True
        if not job.done:
            try:
                with self._lock:
                    emb, truncated = self._run([t for j in batch for t in j.texts])
                start = 0
                for j in batch:
                    end = start + len(j.texts)
                    j.result = (emb[start:end], truncated[start:end])
                    start = end
            except BaseException as err:  # every caller of the batch hears of it
                for j in batch:
                    j.error = err
            finally:
                with self._cond:
                    for j in batch:
                        j.done = True
                    self._running = False
                    self._cond.notify_all()
        if job.error is not None:
            raise job.error
        assert job.result is not None
        return job.result
