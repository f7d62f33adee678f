import numpy as np
import pytest

from fedrec.shared.baselines import (
    Popularity,
    popularity_score_fn,
    popularity_scores,
    random_score_fn,
)
from fedrec.shared.data.dataset import Split
from fedrec.shared.errors import NotFittedError
from fedrec.shared.evaluation import evaluate_model, top_k

from .helpers import make_split


def popular_split() -> Split:
    """Item 3 is trained on by users 0-3, item 1 by users 0-1, item 0 by user 0; 10 items.

    User 4 has trained on item 0 only and holds out item 3 (test) and item 5 (valid).
    """
    train = [(0, 0), (0, 1), (0, 3), (1, 1), (1, 3), (2, 3), (3, 3), (4, 0)]
    return make_split(train, valid=[-1, -1, -1, -1, 5], test=[-1, -1, -1, -1, 3], n_items=10)


def test_popularity_scores_are_training_counts() -> None:
    split = popular_split()
    np.testing.assert_array_equal(popularity_scores(split), [2, 2, 0, 4, 0, 0, 0, 0, 0, 0])


def test_popularity_ranks_most_popular_first() -> None:
    # Prepare
    split = popular_split()
    score_fn = popularity_score_fn(split)

    # Execute: user 4 has not trained on item 3, the most popular.
    scores = score_fn(np.array([4, 2]))
    recommended = top_k(scores[0], split.train_items_of(4), 3)
    metrics = evaluate_model(score_fn, split, k=1)

    # Assert: item 3 first, then item 1 (count 2); item 0 is user 4's own training item.
    assert scores.shape == (2, 10)
    np.testing.assert_array_equal(recommended, [3, 1, 2])
    assert metrics["hr@1_full"] == 1.0 and metrics["n_users"] == 1.0


def test_popularity_scores_are_read_only() -> None:
    scores = popularity_score_fn(popular_split())(np.array([0]))
    with pytest.raises(ValueError):
        scores[0, 0] = 1.0


def test_random_scores_fixed_per_user_whatever_the_batch() -> None:
    score_fn = random_score_fn(50, seed=7)

    together = score_fn(np.array([3, 5]))
    alone = score_fn(np.array([5]))

    assert together.shape == (2, 50)
    np.testing.assert_array_equal(together[1], alone[0])
    assert not np.array_equal(together[0], together[1])
    assert not np.array_equal(random_score_fn(50, seed=8)(np.array([5]))[0], alone[0])


def test_random_baseline_near_chance() -> None:
    # 400 users, 300 items, 5 training items each: with 99 sampled negatives HR@10 ~ 10/100;
    # full ranking over ~293 candidates gives HR@10 ~ 10/293.
    rng = np.random.default_rng(0)
    n_users, n_items = 400, 300
    train, valid, test = [], [], []
    for u in range(n_users):
        items = rng.choice(n_items, 7, replace=False)
        train += [(u, int(i)) for i in items[:5]]
        valid.append(int(items[5]))
        test.append(int(items[6]))
    split = make_split(train, valid, test, n_items)

    got = evaluate_model(random_score_fn(n_items, seed=1), split)

    assert 0.06 < got["hr@10_sampled"] < 0.14
    assert 0.01 < got["hr@10_full"] < 0.07
    assert got["coverage@10"] > 0.9


def test_random_score_fn_validates() -> None:
    with pytest.raises(ValueError, match="n_items"):
        random_score_fn(0, seed=1)
    with pytest.raises(ValueError, match="seed"):
        random_score_fn(5, seed=-1)


def test_popularity_recommender_scores_like_the_score_fn() -> None:
    split = popular_split()
    users = np.array([4, 2])

    model = Popularity().fit(split)

    np.testing.assert_array_equal(model.score(users), popularity_score_fn(split)(users))
    assert model.params() == {} and model.fitted() == {}


def test_a_baseline_refuses_to_score_before_fit() -> None:
    with pytest.raises(NotFittedError, match="fit"):
        Popularity().score(np.array([0]))
