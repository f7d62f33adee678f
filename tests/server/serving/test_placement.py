"""Adding, replacing and removing items known only by their text, on the serving model."""

import numpy as np
import pytest

from fedrec.server.serving import NewItem, Recommender, TrainedItem, UnknownItems
from fedrec.shared.checkpoint import load_checkpoint
from tests.server.api.conftest import make_text_run


@pytest.fixture(scope="module")
def rec(tmp_path_factory: pytest.TempPathFactory) -> Recommender:
    root = tmp_path_factory.mktemp("items")
    run = make_text_run(root / "run", root / "cache")
    return Recommender.from_checkpoint(load_checkpoint(run))


def test_many_items_go_through_the_encoder_in_one_batch(
    rec: Recommender, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert rec.towers is not None
    calls: list[int] = []
    encode = rec.towers.encode_items

    def counting(texts: list[str]) -> np.ndarray:
        calls.append(len(texts))
        return encode(texts)

    monkeypatch.setattr(rec.towers, "encode_items", counting)
    before = rec.n_items
    items = [NewItem(f"b{i}", f"Film number {i}", ("Crime",), "A heist.") for i in range(40)]
    added = rec.add_items(items)
    assert calls == [40]
    assert [a.id for a in added] == [f"b{i}" for i in range(40)]
    assert rec.n_items == before + 40 and rec.n_trained == 6
    # The batch is placed exactly as one-by-one adds would place it.
    one = rec.add_item("single", "Film number 7", ["Crime"], "A heist.")
    assert one.score == pytest.approx(added[7].score, abs=1e-5)
    np.testing.assert_allclose(rec.q[rec.index_of["single"]], rec.q[rec.index_of["b7"]], atol=1e-5)


def test_a_batch_with_a_taken_id_adds_nothing(rec: Recommender) -> None:
    before = rec.n_items
    with pytest.raises(ValueError, match="100"):
        rec.add_items([NewItem("fresh", "Fresh"), NewItem("100", "Taken")])
    with pytest.raises(ValueError):
        rec.add_items([NewItem("twice", "A"), NewItem("twice", "B")])
    assert rec.n_items == before and "fresh" not in rec.index_of


def test_replace_and_remove_keep_the_tables_consistent(rec: Recommender) -> None:
    rec.add_items([NewItem("r1", "Rockets", ("Sci-Fi",)), NewItem("r2", "Bank job", ("Crime",))])
    rec.update_item(NewItem("r1", "Love in Paris", ("Romance",), "A romantic comedy."))
    assert rec.item(rec.index_of["r1"]).genres == ["Romance"]
    rec.remove_item("r1")
    assert "r1" not in rec.index_of
    assert all(rec.ids[i] == raw for raw, i in rec.index_of.items())
    assert rec.q.shape[0] == rec.b.shape[0] == rec.emb.shape[0] == rec.n_items
    assert [i.id for i in rec.similar_items("r2", 1)]  # the tables still line up
    with pytest.raises(UnknownItems):
        rec.remove_item("r1")
    with pytest.raises(TrainedItem):
        rec.remove_item("100")
    with pytest.raises(TrainedItem):
        rec.update_item(NewItem("101", "Anything"))
