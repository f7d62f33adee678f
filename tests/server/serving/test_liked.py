"""New users from liked items on a co-occurrence model: item-kNN on its factors + popularity."""

from pathlib import Path

import numpy as np
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
