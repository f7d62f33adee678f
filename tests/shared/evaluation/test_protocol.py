import logging

import numpy as np
import pytest

from fedrec.shared.data.dataset import Interactions, Split
from fedrec.shared.evaluation import (
    UserEval,
    aggregate_client_metrics,
    evaluate_model,
    evaluate_user,
    full_rank,
    sample_negatives,
    sampled_rank,
    summarize,
    top_k,
    user_ndcgs,
)

# ---------------------------------------------------------------- helpers


def make_split(
    train: list[tuple[int, int]], valid: list[int], test: list[int], n_items: int
) -> Split:
    users = np.array([u for u, _ in train], dtype=np.int64)
    items = np.array([i for _, i in train], dtype=np.int64)
    return Split(
        train=Interactions(
            users=users,
            items=items,
            ratings=np.ones(len(train), dtype=np.float32),
            timestamps=np.zeros(len(train), dtype=np.int64),
        ),
        valid_items=np.array(valid, dtype=np.int64),
        test_items=np.array(test, dtype=np.int64),
        n_users=len(valid),
        n_items=n_items,
    )


N_BLOCKS = 8  # checkerboard: user u (< 8) likes exactly the items i with i % 8 == u
N_ITEMS = 40


def checkerboard_split() -> Split:
    """Users 0..7 like items u, u+8, ..., u+32: the first three train, u+24 valid, u+32 test.

    User 8 has a single training item and no held-out items (-1): it must be skipped.
    """
    train = [(u, u + 8 * j) for u in range(N_BLOCKS) for j in range(3)] + [(8, 0)]
    valid = [u + 24 for u in range(N_BLOCKS)] + [-1]
    test = [u + 32 for u in range(N_BLOCKS)] + [-1]
    return make_split(train, valid, test, N_ITEMS)


def oracle_scores(users: np.ndarray) -> np.ndarray:
    """1 on the user's own checkerboard column, 0 elsewhere."""
    items = np.arange(N_ITEMS)
    return (items[None, :] % N_BLOCKS == np.asarray(users)[:, None] % N_BLOCKS).astype(float)


# ---------------------------------------------------------------- evaluate_user / summarize


def test_evaluate_user_consistent_with_parts() -> None:
    rng = np.random.default_rng(0)
    scores = rng.normal(size=50)
    exclude = np.array([1, 2, 3])
    negatives = sample_negatives(50, np.array([1, 2, 3, 10]), n=20, seed=1, user=3)

    ev = evaluate_user(scores, target=10, exclude=exclude, negatives=negatives, k=5)

    assert ev.rank_full == full_rank(scores, 10, exclude)
    assert ev.rank_sampled == sampled_rank(scores, 10, negatives)
    np.testing.assert_array_equal(ev.top_k, top_k(scores, exclude, 5))
    assert not ev.top_k.flags.writeable


def test_summarize_hand_computed() -> None:
    # Two users, k = 2, 10 items. Full ranks 0 and 3: HR 1/2, NDCG (1 + 0)/2, MRR 1/2.
    # Sampled ranks 1 and 0: HR 1, NDCG (1/log2(3) + 1)/2. Lists {0,1} and {1,2}: 3/10.
    evals = [
        UserEval(rank_full=0, rank_sampled=1, top_k=np.array([0, 1])),
        UserEval(rank_full=3, rank_sampled=0, top_k=np.array([1, 2])),
    ]

    got = summarize(evals, k=2, n_items=10)

    assert got == pytest.approx(
        {
            "hr@2_full": 0.5,
            "ndcg@2_full": 0.5,
            "mrr@2_full": 0.5,
            "hr@2_sampled": 1.0,
            "ndcg@2_sampled": (1 / np.log2(3) + 1) / 2,
            "coverage@2": 0.3,
            "n_users": 2.0,
        }
    )


def test_summarize_empty() -> None:
    got = summarize([], k=10, n_items=5)
    assert got["n_users"] == 0.0 and got["coverage@10"] == 0.0
    assert np.isnan(got["hr@10_full"])


# ---------------------------------------------------------------- aggregate_client_metrics


def test_aggregate_weights_by_users() -> None:
    # (0.5 * 1 + 0.2 * 3) / 4 = 0.275; the empty client (NaN, 0 users) is ignored.
    records = [
        {"hr@10_full": 0.5, "n_users": 1.0},
        {"hr@10_full": 0.2, "n_users": 3.0},
        {"hr@10_full": float("nan"), "n_users": 0.0},
    ]

    got = aggregate_client_metrics(records)

    assert got == pytest.approx({"hr@10_full": 0.275, "n_users": 4.0, "n_clients": 3.0})


def test_aggregate_is_consistent_with_summarize() -> None:
    evals = [UserEval(r, r, np.array([r])) for r in [0, 3, 12, 1, 7]]
    whole = summarize(evals, k=10, n_items=20)
    parts = [summarize(evals[:2], k=10, n_items=20), summarize(evals[2:], k=10, n_items=20)]

    got = aggregate_client_metrics(parts)

    for key in ("hr@10_full", "ndcg@10_full", "mrr@10_full", "hr@10_sampled"):
        assert got[key] == pytest.approx(whole[key])
    assert got["n_users"] == 5.0 and got["n_clients"] == 2.0


def test_aggregate_nested_and_errors() -> None:
    nested = aggregate_client_metrics([{"m": 1.0, "n_users": 2.0, "n_clients": 2.0}] * 2)
    assert nested["n_clients"] == 4.0
    assert aggregate_client_metrics([]) == {"n_users": 0.0, "n_clients": 0.0}
    with pytest.raises(ValueError, match="n_users"):
        aggregate_client_metrics([{"m": 1.0}])
    with pytest.raises(ValueError, match="same metrics"):
        aggregate_client_metrics([{"m": 1.0, "n_users": 1.0}, {"x": 1.0, "n_users": 1.0}])


# ---------------------------------------------------------------- evaluate_model


@pytest.mark.parametrize("target", ["test", "valid"])
def test_oracle_on_checkerboard_is_perfect(target: str) -> None:
    # The oracle scores the user's whole column 1. Only the held-out target is left in it
    # once train items and the *other* held-out item are excluded, so its rank is 0.
    split = checkerboard_split()

    got = evaluate_model(oracle_scores, split, k=10, target=target)  # type: ignore[arg-type]

    assert got["n_users"] == 8.0  # user 8 (no held-out item) skipped
    for key in ("hr@10_full", "ndcg@10_full", "mrr@10_full", "hr@10_sampled", "ndcg@10_sampled"):
        assert got[key] == 1.0, key


def test_reversed_oracle_on_checkerboard_scores_zero() -> None:
    # Reversed, the target is the only -1 among 36 candidates: rank 35, and 35 negatives
    # (all the user never touched, fewer than 99) all beat it.
    split = checkerboard_split()

    got = evaluate_model(lambda u: -oracle_scores(u), split, k=10)

    for key in ("hr@10_full", "ndcg@10_full", "mrr@10_full", "hr@10_sampled", "ndcg@10_sampled"):
        assert got[key] == 0.0, key


def test_constant_model_is_not_rewarded() -> None:
    split = checkerboard_split()
    got = evaluate_model(lambda u: np.zeros((len(u), N_ITEMS)), split, k=10)
    assert got["hr@10_full"] == 0.0 and got["hr@10_sampled"] == 0.0


def test_valid_target_excludes_test_item() -> None:
    # User 0 trains on item 0, validates on 1, tests on 2. A model loving item 2 (the
    # future) must not push the validation item down; for test, the valid item is out.
    split = make_split([(0, 0)], valid=[1], test=[2], n_items=20)
    scores = np.zeros(20)
    scores[[0, 2]] = 10.0
    scores[1] = 5.0

    valid = evaluate_model(lambda u: scores[None, :], split, k=1, target="valid")
    test = evaluate_model(lambda u: scores[None, :], split, k=1, target="test")

    assert valid["hr@1_full"] == 1.0 and valid["hr@1_sampled"] == 1.0
    assert test["hr@1_full"] == 1.0


def test_evaluate_model_matches_evaluate_user_loop() -> None:
    # Prepare: random split and scores; reference built from the per-user API directly.
    rng = np.random.default_rng(3)
    n_users, n_items = 30, 120
    train = [(u, int(i)) for u in range(n_users) for i in rng.choice(n_items, 8, replace=False)]
    valid = [int(rng.integers(n_items)) if u % 5 else -1 for u in range(n_users)]
    test = [int(rng.integers(n_items)) if u % 5 else -1 for u in range(n_users)]
    split = make_split(train, valid, test, n_items)
    table = rng.normal(size=(n_users, n_items))
    by_user = split.train_items_by_user()
    evals = []
    for u in range(n_users):
        if test[u] < 0:
            continue
        exclude = np.append(by_user[u], valid[u])
        negatives = sample_negatives(n_items, np.append(exclude, test[u]), n=99, seed=42, user=u)
        evals.append(evaluate_user(table[u], target=test[u], exclude=exclude, negatives=negatives))

    # Execute with two batch sizes.
    small = evaluate_model(lambda u: table[u], split, batch_size=1)
    large = evaluate_model(lambda u: table[u], split, batch_size=1000)

    # Assert
    assert small == large == summarize(evals, k=10, n_items=n_items)


@pytest.mark.parametrize("target", ["test", "valid"])
def test_user_ndcgs_are_the_per_user_values_evaluate_model_averages(target: str) -> None:
    rng = np.random.default_rng(4)
    n_users, n_items = 25, 60
    train = [(u, int(i)) for u in range(n_users) for i in rng.choice(n_items, 6, replace=False)]
    valid = [int(rng.integers(n_items)) for _ in range(n_users)]
    test = [int(rng.integers(n_items)) for _ in range(n_users)]
    split = make_split(train, valid, test, n_items)
    table = rng.normal(size=(n_users, n_items))
    users = np.arange(n_users)

    per_user = user_ndcgs(lambda u: table[u], split, users, target=target, batch_size=7)
    summary = evaluate_model(lambda u: table[u], split, target=target)  # type: ignore[arg-type]

    assert per_user.shape == (n_users,)
    assert per_user.mean() == pytest.approx(summary["ndcg@10_full"])
    with pytest.raises(ValueError, match="needs a test item"):
        user_ndcgs(lambda u: table[u], make_split(train, valid, [-1] * n_users, n_items), users)


def test_evaluate_model_user_subset() -> None:
    split = checkerboard_split()
    got = evaluate_model(oracle_scores, split, users=np.array([0, 3, 8]))
    assert got["n_users"] == 2.0


def test_evaluate_model_validates() -> None:
    split = checkerboard_split()
    with pytest.raises(ValueError, match="expected"):
        evaluate_model(lambda u: np.zeros((len(u), 3)), split)
    with pytest.raises(ValueError, match="target"):
        evaluate_model(oracle_scores, split, target="train")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="users"):
        evaluate_model(oracle_scores, split, users=np.array([99]))


def test_evaluate_model_warns_on_nan(caplog: pytest.LogCaptureFixture) -> None:
    split = checkerboard_split()
    with caplog.at_level(logging.WARNING):
        got = evaluate_model(lambda u: np.full((len(u), N_ITEMS), np.nan), split)
    assert got["hr@10_full"] == 0.0
    assert "NaN" in caplog.text


def test_evaluate_model_novelty_and_diversity_hand_computed() -> None:
    # Prepare: item i's genre is its block i % 8. The oracle's top 2 for user u is its test
    # item u + 32 (never trained on: popularity rank 32.5 of 40), then the first
    # zero-scored candidate: item 0 (trained twice: rank 1), or item 1 for user 0 (trained
    # once, like the other 22 of items 1..23: rank 13). The two genres always differ.
    split = checkerboard_split()
    genres = [[f"g{i % N_BLOCKS}"] for i in range(N_ITEMS)]

    # Execute
    plain = evaluate_model(oracle_scores, split, k=2)
    got = evaluate_model(oracle_scores, split, k=2, genres=genres)

    # Assert: the accuracy keys are untouched; the list metrics are added only on request.
    assert got == {
        **plain,
        "mean_pop_rank@2": pytest.approx(((32.5 + 13) / 2 + 7 * (32.5 + 1) / 2) / 8),
        "ild_genres@2": pytest.approx(1.0),
    }
    no_genres = evaluate_model(oracle_scores, split, k=2, genres=[[] for _ in range(N_ITEMS)])
    assert set(no_genres) == set(plain) | {"mean_pop_rank@2"}
