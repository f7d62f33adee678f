"""New users from liked items on a co-occurrence model: item-kNN on its factors + popularity."""

from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from pytest import MonkeyPatch

from fedrec.server.serving import Recommender, scoring
from fedrec.server.serving.explain import POPULARITY
from fedrec.server.serving.tables import Tables
from fedrec.shared.checkpoint import load_checkpoint, save_catalog, save_checkpoint
from fedrec.shared.config import resolve_config
from fedrec.shared.models.cooccurrence import ITEM_PRIOR

from .conftest import numbered_catalog

# Items 0-2 are one taste, 3-4 another; item 5 shares nothing with anyone (its own axis).
# The last column stands for the text part: it counts in the similarity like the others.
FACTORS = np.array(
    [
        [1.0, 0.1, 0.0, 0.2],
        [0.9, 0.2, 0.0, 0.1],
        [0.8, 0.0, 0.0, 0.3],
        [0.0, 1.0, 0.0, 0.2],
        [0.1, 0.9, 0.0, 0.0],
        [0.0, 0.0, 1.0, -0.3],
    ]
)
PRIOR = np.array([1.0, 2.0, 0.5, 3.0, 0.2, 4.0])


def _rec(weight: float = 1.0) -> Recommender:
    return Recommender(
        FACTORS,
        np.zeros(6),
        numbered_catalog(6),
        content_split=(3, 0.0),
        item_prior=PRIOR,
        liked_weight=weight,
    )


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_scores_are_log_popularity_plus_the_weighted_similarity_to_the_liked() -> None:
    liked = np.array([0, 3])
    scores = _rec(weight=2.0).user_scores(liked)[0]
    expected = [
        PRIOR[j] + 2.0 * sum(_cosine(FACTORS[j], FACTORS[i]) for i in liked) for j in range(6)
    ]
    np.testing.assert_allclose(scores, expected, rtol=1e-6)


def test_at_weight_zero_a_new_user_gets_the_models_popularity() -> None:
    answer = _rec(weight=0.0).cold_start(["0"], k=5)
    assert [it.id for it in answer.items] == ["5", "3", "1", "2", "4"]


def test_because_names_the_liked_item_whose_removal_lowers_the_score_most() -> None:
    rec = _rec(weight=3.0)
    answer = rec.cold_start(["0", "3"], k=4)
    reasons = {it.id: it.because for it in answer.items}
    assert reasons["1"] == "0" and reasons["2"] == "0" and reasons["4"] == "3"
    assert reasons["5"] == POPULARITY  # no liked item raised it: it is there for its popularity
    full = rec.user_scores(np.array([0, 3]))[0]
    for item, why in reasons.items():
        if why != POPULARITY:  # removing the named liked item lowers that item's score
            rest = np.array([i for i in (0, 3) if str(i) != why])
            assert rec.user_scores(rest)[0][int(item)] < full[int(item)]


def test_a_cooccurrence_checkpoint_serves_its_configured_liked_weight(tmp_path: Path) -> None:
    cfg = resolve_config({}, {"cooccurrence-liked-similarity": 4.0, "text-tower": "off"})
    save_catalog(tmp_path, numbered_catalog(6))
    save_checkpoint(
        tmp_path,
        round=1,
        tensors={
            "item_factors": FACTORS.astype(np.float32),
            "item_bias": np.zeros(6, np.float32),
            ITEM_PRIOR: PRIOR.astype(np.float32),
        },
        run_name="liked",
        kind="cooccurrence",
        config=cfg.to_run_config(),
        metrics={},
        history=[{"round": 1}],
        privacy=None,
    )
    rec = Recommender.from_checkpoint(load_checkpoint(tmp_path))
    assert rec.liked_weight == 4.0


def test_removing_a_liked_item_subtracts_its_similarities_as_scoring_again_would() -> None:
    rec = _rec(weight=2.5)
    t, liked = rec.tables, np.array([0, 3, 4])
    empty = np.zeros((0, 0), np.float32)
    labels, fast = rec._without_each(t, liked, None, [], empty)
    again_labels, again = rec._without_each_rescored(t, liked, None, [], empty)
    assert labels == again_labels == ["0", "3", "4"]
    for a, b in zip(fast, again, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_an_answer_computes_the_liked_similarities_once(monkeypatch: MonkeyPatch) -> None:
    rec = _rec(weight=3.0)
    expected = [(it.id, it.score, it.because) for it in rec.cold_start(["0", "3"], k=4).items]
    calls: list[np.ndarray] = []
    once = scoring.liked_similarity

    def counted(t: Tables, liked: np.ndarray) -> np.ndarray:
        calls.append(liked)
        return once(t, liked)

    monkeypatch.setattr(scoring, "liked_similarity", counted)
    answer = rec.cold_start(["0", "3"], k=4)
    assert len(calls) == 1  # the scores and the explanation share them
    assert [(it.id, it.score, it.because) for it in answer.items] == expected


def _direct(t: Tables, liked: np.ndarray) -> np.ndarray:
    return (t.unit @ t.unit[liked].T).astype(np.float64)  # type: ignore[no-any-return]


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(2, 30),
    width=st.integers(1, 40),
    added=st.integers(0, 5),
    picks=st.lists(st.integers(0, 10_000), min_size=1, max_size=6),
    seed=st.integers(0, 2**16),
)
def test_the_kept_cosines_answer_as_computing_them_does_with_added_items(
    n: int, width: int, added: int, picks: list[int], seed: int
) -> None:
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(n, width)).astype(np.float32)
    kept = Tables.of(q, np.zeros(n), np.zeros((n, 0)), numbered_catalog(n), gram=True)
    assert kept.gram is not None and kept.gram.shape == (n, n)
    if added:
        kept = kept.appended(
            rng.normal(size=(added, width)).astype(np.float32),
            np.zeros(added),
            np.zeros((added, 0)),
            ids=[f"new{j}" for j in range(added)],
            titles=[f"New {j}" for j in range(added)],
            genres=[["Drama"]] * added,
            texts=[""] * added,
        )
    liked = np.unique(np.array(picks) % len(kept.ids))
    np.testing.assert_allclose(
        scoring.liked_similarity(kept, liked), _direct(kept, liked), rtol=1e-5, atol=1e-6
    )
    if added:  # changing or removing an added item keeps the trained cosines valid
        changed = kept.replaced(
            n, rng.normal(size=width), 0.0, np.zeros(0), title="x", genres=[], text=""
        )
        assert changed.gram is kept.gram
        liked = np.unique(np.array(picks) % len(changed.ids))
        np.testing.assert_allclose(
            scoring.liked_similarity(changed, liked), _direct(changed, liked), atol=1e-5
        )
        assert kept.without(n).gram is kept.gram
    assert kept.without(0).gram is None  # a trained item gone: computed again, not misread


def test_the_cosines_are_kept_only_where_asked_and_within_their_size_limits() -> None:
    from fedrec.server.serving import tables

    def of(n: int, width: int, gram: bool = True) -> Tables:
        q = np.ones((n, width), np.float32)
        return Tables.of(q, np.zeros(n), np.zeros((n, 0)), numbered_catalog(n), gram=gram)

    assert of(6, 4, gram=False).gram is None
    assert of(tables.GRAM_ANY_WIDTH_ITEMS + 1, 4).gram is None  # would outweigh the vectors
    assert of(tables.GRAM_ANY_WIDTH_ITEMS + 1, tables.GRAM_ANY_WIDTH_ITEMS + 1).gram is not None
    assert _rec().tables.gram is not None  # item-kNN on liked items keeps them
