"""Free text read as an intent: the genre match gates, popularity orders, titles stand out."""

import numpy as np
import pytest

from fedrec.server.serving.intent import IntentScorer, genre_text, standard_score
from fedrec.server.serving.tables import Tables
from fedrec.shared.data.dataset import ItemCatalog

GENRES = ["Horror", "Musical", "Western"]


def _encode(texts: list[str]) -> np.ndarray:
    """A stand-in encoder: each genre's text is its own axis; anything else is axis 3."""
    out = np.zeros((len(texts), 5))
    for row, text in enumerate(texts):
        hits = [j for j, g in enumerate(GENRES) if genre_text(g) == text]
        out[row, hits[0] if hits else 3] = 1.0
    return out


def _tables(prior: list[float]) -> Tables:
    genres = [["Horror"], ["Horror"], ["Musical"], ["Western"], ["Horror", "Musical"]]
    titles = [f"Film {i} (1990)" for i in range(len(genres))]
    emb = np.tile([0.0, 0.0, 0.0, 0.1, 1.0], (len(genres), 1))  # no title stands out
    catalog = ItemCatalog(
        raw_ids=[str(i) for i in range(len(genres))], titles=titles, genres=genres, texts=titles
    )
    return Tables.of(
        np.zeros((5, 2)), np.zeros(5), emb.astype(np.float32), catalog, np.array(prior)
    )


def _scorer(prior_weight: float = 1.0) -> IntentScorer:
    return IntentScorer(_encode, similarity_weight=1.0, prior_weight=prior_weight)


def test_items_of_the_wanted_genre_come_first_and_the_popular_among_them_lead() -> None:
    t = _tables([1.0, 3.0, 9.0, 9.0, 2.0])  # the musical and the western are the most popular
    scores = _scorer().scores(t, np.array([1.0, 0, 0, 0, 0]))  # "horror"
    order = list(np.argsort(-scores))
    assert set(order[:3]) == {0, 1, 4}  # every horror film before any other
    assert order.index(1) < order.index(0)  # and the more popular horror film first


def test_without_the_popularity_weight_popularity_does_not_count() -> None:
    t = _tables([1.0, 3.0, 9.0, 9.0, 2.0])
    scores = _scorer(prior_weight=0.0).scores(t, np.array([1.0, 0, 0, 0, 0]))
    assert scores[0] == pytest.approx(scores[1])


def test_a_standout_text_match_is_found_even_outside_the_genres() -> None:
    n = 40
    genres = [["Horror"]] * (n - 1) + [["Western"]]
    titles = [f"Film {i} (1990)" for i in range(n)]
    emb = np.tile([0.0, 0.0, 0.0, 0.1, 1.0], (n, 1)).astype(np.float32)
    catalog = ItemCatalog(
        raw_ids=[str(i) for i in range(n)], titles=titles, genres=genres, texts=titles
    )
    query = np.array([1.0, 0, 0, 0, 0])  # "horror"
    plain = Tables.of(np.zeros((n, 2)), np.zeros(n), emb, catalog, np.ones(n))
    before = _scorer().scores(plain, query)
    emb[-1] = [1.0, 0.0, 0.0, 0.0, 0.0]  # the western's text is what the query says
    matched = Tables.of(np.zeros((n, 2)), np.zeros(n), emb, catalog, np.ones(n))
    after = _scorer().scores(matched, query)
    assert after[-1] > before[-1]  # a standout match counts
    np.testing.assert_allclose(after[:-1] - after[0], 0.0, atol=1e-9)  # weak ones do not


def test_new_items_get_the_median_popularity_and_removed_ones_take_theirs_along() -> None:
    t = _tables([1.0, 3.0, 9.0, 9.0, 2.0])
    grown = t.appended(
        np.zeros((1, 2)),
        np.zeros(1),
        np.zeros((1, 5), np.float32),
        ids=["new"],
        titles=["New (1999)"],
        genres=[["Horror"]],
        texts=["New (1999)"],
    )
    assert grown.prior.tolist() == [1.0, 3.0, 9.0, 9.0, 2.0, 3.0]
    assert grown.without(1).prior.tolist() == [1.0, 9.0, 9.0, 2.0, 3.0]


def test_a_prior_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(ValueError, match="item_prior"):
        _tables([1.0, 2.0])


def test_standard_scores_of_a_constant_are_zero() -> None:
    assert not standard_score(np.ones(4)).any()
    np.testing.assert_allclose(standard_score(np.array([0.0, 2.0])), [-1.0, 1.0])


def _word_encode(texts: list[str]) -> np.ndarray:
    """A stand-in encoder: "horror" and "musical" in a text each add their genre's axis."""
    out = _encode(texts)
    for row, text in enumerate(texts):
        low = text.lower()
        if "horror" in low or "musical" in low:
            out[row] = 0.0
            out[row, 0] += "horror" in low
            out[row, 1] += "musical" in low
    return out


def test_because_names_the_word_that_raised_the_item_or_says_popularity() -> None:
    from fedrec.server.serving.explain import POPULARITY, explain_by_removal

    t = _tables([1.0, 3.0, 9.0, 9.0, 2.0])
    scorer = IntentScorer(_word_encode, similarity_weight=1.0, prior_weight=0.5)
    text, words = "a horror musical", ["horror", "musical"]
    scores = scorer.scores(t, _word_encode([text])[0])
    variants = _word_encode([text.replace(w, "") for w in words])
    without = [scorer.scores(t, v) for v in variants]
    top = np.argsort(-scores)[:5]
    reasons = dict(
        zip(
            top.tolist(),
            explain_by_removal(scores, top, [f"text: {w}" for w in words], without),
            strict=True,
        )
    )
    assert reasons[1] == "text: horror" and reasons[2] == "text: musical"
    assert reasons[3] == POPULARITY  # the western: no word of the query raised it
    for item, why in reasons.items():
        if why != POPULARITY:  # removing the named word lowers that item's score
            assert without[words.index(why.removeprefix("text: "))][item] < scores[item]


def test_a_word_is_found_whole_and_in_any_case() -> None:
    from fedrec.server.serving.explain import word_spans

    text = "Horror and horror-comedy, HORROR"
    assert [text[a:b] for a, b in word_spans(text, "horror")] == ["Horror", "HORROR"]
    assert word_spans("horror", "horror") == [(0, 6)]
    assert word_spans("horrors", "horror") == []


def test_scores_of_many_queries_are_each_querys_scores() -> None:
    t = _tables([1.0, 3.0, 9.0, 9.0, 2.0])
    scorer = IntentScorer(_word_encode, similarity_weight=1.0, prior_weight=0.5)
    queries = _word_encode(["a horror musical", "a musical", "a western", "horror"])
    many = scorer.scores_many(t, queries)
    assert many.shape == (4, 5)
    for q, row in zip(queries, many, strict=True):
        np.testing.assert_allclose(row, scorer.scores(t, q), atol=1e-12)
