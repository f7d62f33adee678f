"""Concurrent encoder calls combined into one pass, each caller handed its own rows."""

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from fedrec.server.serving.batching import Batcher


def test_concurrent_calls_share_passes_and_each_gets_its_rows() -> None:
    calls: list[list[str]] = []
    gate = threading.Event()

    def run(texts: list[str]) -> tuple[np.ndarray, list[bool]]:
        calls.append(texts)
        gate.wait(5)  # the first pass is slow: the others queue behind it
        return np.array([[float(len(t))] for t in texts]), [t.endswith("!") for t in texts]

    batcher = Batcher(run, threading.Lock())
    texts = [["a" * i, "b!"] for i in range(1, 9)]
    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(batcher, t) for t in texts]
        gate.set()
        results = [f.result(10) for f in futures]
    for t, (emb, cut) in zip(texts, results, strict=True):
        assert emb[:, 0].tolist() == [len(x) for x in t] and cut == [False, True]
    assert len(calls) < len(texts)  # batched: fewer passes than calls
    assert sorted(x for c in calls for x in c) == sorted(x for t in texts for x in t)


def test_a_failed_pass_fails_every_call_in_it_and_the_next_one_runs() -> None:
    fail = [True]

    def run(texts: list[str]) -> tuple[np.ndarray, list[bool]]:
        if fail[0]:
            raise RuntimeError("encoder down")
        return np.zeros((len(texts), 1)), [False] * len(texts)

    batcher = Batcher(run, threading.Lock())
    with pytest.raises(RuntimeError):
        batcher(["x"])
    fail[0] = False
    assert batcher(["x", "y"])[0].shape == (2, 1)


def test_with_two_passes_two_run_at_once_and_the_rest_wait_for_a_free_one() -> None:
    started: list[list[str]] = []
    both = threading.Barrier(2, timeout=5)  # passes 1 and 2 must be running together
    release = threading.Event()

    def run(texts: list[str]) -> tuple[np.ndarray, list[bool]]:
        started.append(texts)
        if len(started) <= 2:
            both.wait()
            release.wait(5)
        return np.array([[float(len(t))] for t in texts]), [False] * len(texts)

    batcher = Batcher(run, threading.BoundedSemaphore(2), passes=2)
    with ThreadPoolExecutor(6) as pool:
        first = [pool.submit(batcher, [c]) for c in ("a", "bb")]
        while len(started) < 2:
            threading.Event().wait(0.01)
        later = [pool.submit(batcher, ["c" * i]) for i in range(3, 7)]
        threading.Event().wait(0.1)
        assert len(started) == 2  # both passes busy: the others queue
        release.set()
        results = [f.result(10) for f in first + later]
    assert [r[0][0, 0] for r in results] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert len(started) < 6  # the queued ones shared passes
    with pytest.raises(ValueError, match="passes"):
        Batcher(run, threading.Lock(), passes=0)
