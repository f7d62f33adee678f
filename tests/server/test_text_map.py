"""New items from text: the ridge map from text embeddings to the served item table."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedrec.server.serving import Recommender
from fedrec.server.text_map import fit_text_map, min_items
from fedrec.shared.data.dataset import ItemCatalog


def _linear_table(n: int, f: int, d: int, seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    emb = rng.standard_normal((n, f))
    a, c = rng.standard_normal((f, d)), rng.standard_normal(f)
    return emb, a, c, emb @ a + 0.5, emb @ c - 1.0


def test_a_linear_table_is_recovered_for_unseen_texts() -> None:
    emb, a, c, q, b = _linear_table(200, 8, 3, 0)
    fitted = fit_text_map(emb, q, b, l2=1e-6)
    new = np.random.default_rng(1).standard_normal((5, 8))
    vec, bias = fitted.place(new)
    np.testing.assert_allclose(vec, new @ a + 0.5, atol=1e-3)
    np.testing.assert_allclose(bias, new @ c - 1.0, atol=1e-3)


def test_bad_inputs_are_refused() -> None:
    emb, _, _, q, b = _linear_table(min_items(8), 8, 3, 0)
    with pytest.raises(ValueError, match="too few"):
        fit_text_map(emb[:-1], q[:-1], b[:-1])
    with pytest.raises(ValueError, match="disagree"):
        fit_text_map(emb, q[:-1], b)
    with pytest.raises(ValueError, match="l2"):
        fit_text_map(emb, q, b, l2=0.0)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.floats(-3, 3))
def test_a_constant_table_places_every_text_at_that_constant(seed: int, value: float) -> None:
    emb = np.random.default_rng(seed).standard_normal((40, 4))
    fitted = fit_text_map(emb, np.full((40, 2), value), np.full(40, value), l2=1e-3)
    vec, bias = fitted.place(np.random.default_rng(seed + 1).standard_normal((3, 4)) * 0.1)
    np.testing.assert_allclose(vec, value, atol=0.05)
    np.testing.assert_allclose(bias, value, atol=0.05)


class _Towers:
    """Stands in for the text towers: a fixed text embedding and an item head that is off."""

    def __init__(self, new_emb: np.ndarray) -> None:
        self.new_emb = new_emb

    def item_vectors(
        self, q: np.ndarray, b: np.ndarray, emb: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        return q, b

    def item_part(self, emb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros((len(emb), 3)), np.zeros(len(emb))

    def encode_items(self, texts: list[str]) -> np.ndarray:
        return self.new_emb[None, :]


def _catalog(n: int) -> ItemCatalog:
    names = [str(i) for i in range(n)]
    return ItemCatalog(
        raw_ids=names, titles=names, genres=[[] for _ in names], texts=names, years=[None] * n
    )


@pytest.mark.parametrize("n_items", [200, 18, 17])  # min_items(8) == 18
def test_the_recommender_places_new_items_by_the_map_on_large_catalogues(n_items: int) -> None:
    f = 8
    emb, a, c, q, b = _linear_table(n_items, f, 3, 2)
    new = np.random.default_rng(3).standard_normal(f)
    rec = Recommender(
        q,
        b,
        _catalog(n_items),
        towers=_Towers(new),
        item_text_emb=emb,  # type: ignore[arg-type]
    )
    item = rec.add_item("new", "New film")
    assert (rec.text_map is not None) == (n_items >= min_items(f))
    if n_items == 200:
        # Where the trained items say texts like this one sit (close to the linear truth).
        np.testing.assert_allclose(rec.q[item.index], new @ a + 0.5, atol=0.1)
        np.testing.assert_allclose(rec.b[item.index], new @ c - 1.0, atol=0.1)
    if rec.text_map is None:
        # Too few items to fit the map: the item head places it (here: at the origin).
        np.testing.assert_array_equal(rec.q[item.index], 0.0)
