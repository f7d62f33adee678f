"""Serving from many threads: encoder calls batched, answers as if made one at a time."""

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from fedrec.server.recommend import NewItem, Recommender, _Batcher
from fedrec.shared.checkpoint import load_checkpoint
from tests.server.api.conftest import make_text_run


def test_concurrent_calls_share_passes_and_each_gets_its_rows() -> None:
    calls: list[list[str]] = []
    gate = threading.Event()

    def run(texts: list[str]) -> tuple[np.ndarray, list[bool]]:
        calls.append(texts)
        gate.wait(5)  # the first pass is slow: the others queue behind it
        return np.array([[float(len(t))] for t in texts]), [t.endswith("!") for t in texts]

    batcher = _Batcher(run, threading.Lock())
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

    batcher = _Batcher(run, threading.Lock())
    with pytest.raises(RuntimeError):
        batcher(["x"])
    fail[0] = False
    assert batcher(["x", "y"])[0].shape == (2, 1)


@pytest.fixture(scope="module")
def rec(tmp_path_factory: pytest.TempPathFactory) -> Recommender:
    root = tmp_path_factory.mktemp("conc")
    return Recommender.from_checkpoint(load_checkpoint(make_text_run(root / "run", root / "c")))


def test_concurrent_cold_starts_answer_as_sequential_ones(rec: Recommender) -> None:
    requests = [
        {"text": "rockets and outer space", "k": 3},
        {"text": "a romantic comedy about weddings", "k": 3},
        {"liked_item_ids": ["104"], "text": "a daring robbery", "k": 2},
        {"liked_item_ids": ["100", "101"], "k": 3},
    ] * 4

    def ask(body: dict[str, object]) -> list[tuple[str, str | None]]:
        result = rec.cold_start(
            body.get("liked_item_ids", ()),  # type: ignore[arg-type]
            int(body["k"]),  # type: ignore[call-overload]
            text=body.get("text"),  # type: ignore[arg-type]
        )
        return [(i.id, i.because) for i in result.items]

    alone = [ask(b) for b in requests]
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(ask, requests))
    assert together == alone


def test_readers_never_see_half_an_admin_change(rec: Recommender) -> None:
    stop = threading.Event()
    errors: list[BaseException] = []

    def read() -> None:
        while not stop.is_set():
            try:
                t = rec.tables
                assert t.q.shape[0] == t.b.shape[0] == len(t.ids) == len(t.index_of)
                rec.similar_items("100", 3)
                rec.cold_start(["100"], 3)
            except BaseException as err:  # noqa: BLE001 - reported below
                errors.append(err)
                return

    readers = [threading.Thread(target=read) for _ in range(3)]
    for r in readers:
        r.start()
    for i in range(15):
        rec.add_items([NewItem(f"w{i}", f"Space film {i}", ("Sci-Fi",))])
        if i % 3 == 0:
            rec.remove_item(f"w{i}")
    stop.set()
    for r in readers:
        r.join(10)
    assert not errors, errors[0]
    assert rec.n_items == 6 + 15 - 5
