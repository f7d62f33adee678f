"""The serving model from many threads: answers as if made one at a time, whole changes."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from fedrec.server.serving import NewItem, Recommender
from fedrec.shared.checkpoint import load_checkpoint
from tests.server.api.conftest import make_text_run


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
