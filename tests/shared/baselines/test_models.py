"""Every learned baseline on implicit's checkerboard, and each model against its definition."""

from __future__ import annotations

import numpy as np
import pytest

from fedrec.shared.baselines import EASE, IALS, CentralMF, ItemKNN, Recommender
from fedrec.shared.baselines.base import interaction_matrix
from fedrec.shared.baselines.ease import ease_weights
from fedrec.shared.baselines.itemknn import cosine_similarity, keep_neighbours
from fedrec.shared.evaluation import evaluate_model

from .helpers import checkerboard, make_split

MODELS = {
    "item-knn": lambda: ItemKNN(neighbours=5, shrinkage=1.0),
    "ease": lambda: EASE(l2=1.0),
    "ials": lambda: IALS(factors=4, regularization=0.1, iterations=10, num_threads=1),
    "mf": lambda: CentralMF(dim=4, learning_rate=0.05, epochs=20, patience=20),
}


@pytest.mark.parametrize("name", MODELS)
def test_top_item_of_user_u_is_u(name: str) -> None:
    # Prepare: user u's held-out test item u is the one unseen item all users of its
    # parity liked; its validation item (u + 2) % n likewise.
    split = checkerboard(20)

    # Execute
    model: Recommender = MODELS[name]().fit(split)
    test = evaluate_model(model.score, split, k=1)
    valid = evaluate_model(model.score, split, k=1, target="valid")

    # Assert
    assert model.name == name
    assert test["hr@1_full"] == 1.0 and valid["hr@1_full"] == 1.0
    assert model.score(np.array([3, 4])).shape == (2, 20)


def test_mf_reports_the_epoch_it_kept() -> None:
    model = CentralMF(dim=4, learning_rate=0.05, epochs=6, patience=6).fit(checkerboard(10))
    fitted = model.fitted()
    assert 1 <= fitted["best_epoch"] <= fitted["epochs_run"] == 6
    assert model.params()["dim"] == 4


def _random_split(seed: int, n_users: int = 12, n_items: int = 9):
    rng = np.random.default_rng(seed)
    train = [(u, i) for u in range(n_users) for i in range(n_items) if rng.random() < 0.35]
    return make_split(train, [-1] * n_users, [-1] * n_users, n_items)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ease_is_the_constrained_least_squares_solution(seed: int) -> None:
    # Column j of B minimises ||x_j - X_{-j} b||² + λ||b||² over the other items' weights
    # (diag(B) = 0): a ridge regression per item, solved directly here.
    split = _random_split(seed)
    x = interaction_matrix(split, np.float64).toarray()
    l2 = 2.5

    weights = ease_weights(x.T @ x, l2)

    for j in range(x.shape[1]):
        others = np.delete(np.arange(x.shape[1]), j)
        a = x[:, others]
        b = np.linalg.solve(a.T @ a + l2 * np.eye(others.size), a.T @ x[:, j])
        np.testing.assert_allclose(weights[others, j], b, atol=1e-10)
        assert weights[j, j] == 0.0
    model = EASE(l2=l2).fit(split)
    np.testing.assert_allclose(model.score(np.arange(12)), x @ weights, atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_item_knn_is_shrunk_cosine_over_its_neighbours(seed: int) -> None:
    split = _random_split(seed)
    x = interaction_matrix(split, np.float64).toarray()
    shrink = 3.0

    sim = cosine_similarity(interaction_matrix(split, np.float64), shrink)
    pruned = keep_neighbours(sim, 2)

    for i in range(x.shape[1]):
        for j in range(x.shape[1]):
            norm = np.sqrt(x[:, i].sum() * x[:, j].sum()) + shrink
            expected = 0.0 if i == j else (x[:, i] @ x[:, j]) / norm
            assert sim[i, j] == pytest.approx(expected)
    # Each column keeps its 2 largest similarities, nothing else.
    for j in range(x.shape[1]):
        kept = np.flatnonzero(pruned[:, j])
        assert kept.size <= 2
        if kept.size:
            assert pruned[:, j].min() >= 0 and sim[kept, j].min() >= np.sort(sim[:, j])[-2]
    model = ItemKNN(neighbours=2, shrinkage=shrink).fit(split)
    np.testing.assert_allclose(model.score(np.arange(12)), x @ pruned)


def test_hyperparameters_are_validated() -> None:
    with pytest.raises(ValueError, match="l2"):
        EASE(l2=0)
    with pytest.raises(ValueError, match="neighbours"):
        ItemKNN(neighbours=0)
    with pytest.raises(ValueError, match="alpha"):
        IALS(alpha=0)
    with pytest.raises(ValueError, match="epochs"):
        CentralMF(epochs=0)
