"""Ranking one user's held-out item and the top-k list: hand-computed and brute force."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedrec.shared.evaluation import full_rank, sample_negatives, sampled_rank, top_k


def brute_rank(scores: np.ndarray, target: int, candidates: list[int]) -> int:
    """Sort candidates by score, ties with the target placed ahead of it; find the target."""
    pool = sorted(set(candidates) | {target})
    order = sorted(pool, key=lambda i: (-scores[i], i == target))
    return order.index(target)


scores_st = st.lists(st.integers(min_value=-3, max_value=3), min_size=1, max_size=25).map(
    lambda xs: np.array(xs, dtype=np.float64)  # few distinct values -> many ties
)

# ---------------------------------------------------------------- full_rank


def test_full_rank_hand_computed() -> None:
    # Prepare: 5 items, target 2 (score 0.5). Item 0 (0.9) is a training item, excluded.
    # Candidates {1: 0.3, 2: 0.5, 3: 0.5, 4: 0.1}: nothing above 0.5, item 3 ties -> the
    # pessimistic rank is 1. HR@1 = 0, HR@2 = 1, NDCG@2 = 1/log2(3) = 0.631, MRR = 1/2.
    scores = np.array([0.9, 0.3, 0.5, 0.5, 0.1])

    # Execute / Assert
    assert full_rank(scores, 2, np.array([0])) == 1
    # Without the exclusion item 0 is ahead too: rank 2, NDCG@5 = 1/log2(4) = 0.5.
    assert full_rank(scores, 2, np.array([], dtype=np.int64)) == 2
    # Excluding the tying item 3 as well leaves the target first.
    assert full_rank(scores, 2, np.array([0, 3])) == 0


def test_constant_scores_rank_last_not_first() -> None:
    scores = np.zeros(10)
    assert full_rank(scores, 4, np.array([0, 1])) == 7  # 8 candidates -> rank 7
    assert sampled_rank(scores, 4, np.array([5, 6, 7])) == 3


def test_excluded_higher_item_does_not_push_target_down() -> None:
    scores = np.array([100.0, 1.0, 2.0, 0.0])
    assert full_rank(scores, 2, np.array([0])) == 0
    assert full_rank(scores, 2, np.array([], dtype=np.int64)) == 1


def test_target_is_never_excluded() -> None:
    scores = np.array([0.0, 1.0, 2.0])
    assert full_rank(scores, 1, np.array([1, 2])) == 0


def test_nan_scores_are_pessimistic() -> None:
    # NaN target ranks last; a NaN candidate counts as ahead of the target.
    assert full_rank(np.array([np.nan, 1.0, 2.0]), 0, np.array([], dtype=np.int64)) == 2
    assert full_rank(np.array([5.0, np.nan, 2.0]), 0, np.array([], dtype=np.int64)) == 1
    # top_k lists NaN-scored items last.
    np.testing.assert_array_equal(top_k(np.array([np.nan, 1.0, 2.0]), [], 3), [2, 1, 0])


@pytest.mark.parametrize(
    ("target", "exclude", "message"),
    [(5, [], "target"), (-1, [], "target"), (0, [7], "exclude"), (0, [-1], "exclude")],
)
def test_full_rank_rejects_bad_indices(target: int, exclude: list[int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        full_rank(np.zeros(5), target, np.array(exclude, dtype=np.int64))


@given(data=st.data(), scores=scores_st)
def test_full_rank_matches_brute_force(data: st.DataObject, scores: np.ndarray) -> None:
    n = scores.size
    target = data.draw(st.integers(0, n - 1))
    exclude = data.draw(st.lists(st.integers(0, n - 1), max_size=n))  # may include target
    candidates = [i for i in range(n) if i not in exclude]

    got = full_rank(scores, target, np.array(exclude, dtype=np.int64))

    assert got == brute_rank(scores, target, candidates)


# ---------------------------------------------------------------- sampled protocol


def test_sample_negatives_properties() -> None:
    exclude = np.arange(0, 200, 2)  # the user touched every even item of 500

    a = sample_negatives(500, exclude, seed=42, user=7)
    again = sample_negatives(500, exclude, seed=42, user=7)
    other_user = sample_negatives(500, exclude, seed=42, user=8)
    other_seed = sample_negatives(500, exclude, seed=43, user=7)

    assert a.size == 99 and np.unique(a).size == 99
    assert not np.isin(a, exclude).any()
    np.testing.assert_array_equal(a, again)
    assert not np.array_equal(a, other_user)
    assert not np.array_equal(a, other_seed)


def test_sample_negatives_uses_all_when_too_few() -> None:
    got = sample_negatives(10, np.array([0, 1, 2, 3, 4, 5]), seed=0, user=0)
    np.testing.assert_array_equal(got, [6, 7, 8, 9])


def test_sample_negatives_validates() -> None:
    with pytest.raises(ValueError, match="n "):
        sample_negatives(10, [], n=-1, seed=0, user=0)
    with pytest.raises(ValueError, match="seed and user"):
        sample_negatives(10, [], seed=-1, user=0)


@given(
    n_items=st.integers(1, 60),
    n=st.integers(0, 30),
    seed=st.integers(0, 2**32),
    user=st.integers(0, 10_000),
    data=st.data(),
)
def test_sample_negatives_distinct_and_disjoint(
    n_items: int, n: int, seed: int, user: int, data: st.DataObject
) -> None:
    exclude = np.array(data.draw(st.lists(st.integers(0, n_items - 1))), dtype=np.int64)

    got = sample_negatives(n_items, exclude, n=n, seed=seed, user=user)

    free = n_items - np.unique(exclude).size
    assert got.size == min(n, free)
    assert np.unique(got).size == got.size
    assert not np.isin(got, exclude).any()


def test_sampled_rank_hand_computed() -> None:
    # Target 0 scores 0.5; negatives 1 (0.9, ahead), 2 (0.5, tie -> ahead), 3 (0.1) -> rank 2.
    scores = np.array([0.5, 0.9, 0.5, 0.1, 99.0])
    assert sampled_rank(scores, 0, np.array([1, 2, 3])) == 2


def test_sampled_rank_rejects_target_or_duplicates_in_negatives() -> None:
    with pytest.raises(ValueError, match="contain the target"):
        sampled_rank(np.zeros(4), 0, np.array([0, 1]))
    with pytest.raises(ValueError, match="distinct"):
        sampled_rank(np.zeros(4), 0, np.array([1, 1]))


@given(data=st.data(), scores=scores_st.filter(lambda s: s.size >= 2))
def test_sampled_rank_matches_brute_force(data: st.DataObject, scores: np.ndarray) -> None:
    n = scores.size
    target = data.draw(st.integers(0, n - 1))
    others = [i for i in range(n) if i != target]
    negatives = data.draw(st.lists(st.sampled_from(others), unique=True))

    got = sampled_rank(scores, target, np.array(negatives, dtype=np.int64))

    assert got == brute_rank(scores, target, negatives)


# ---------------------------------------------------------------- top_k


def test_top_k_hand_computed() -> None:
    # Item 0 is excluded although best; ties 2 and 3 ordered by index.
    scores = np.array([9.0, 1.0, 5.0, 5.0, 7.0])
    np.testing.assert_array_equal(top_k(scores, np.array([0]), 3), [4, 2, 3])
    np.testing.assert_array_equal(top_k(scores, np.array([0, 4]), 10), [2, 3, 1])


def test_top_k_ties_at_the_cut_follow_item_index_on_large_inputs() -> None:
    # argpartition alone picks arbitrary items among ties at the k-th score on large
    # arrays; the lowest indices must win so lists are reproducible.
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 3, size=2000).astype(np.float64)
    exclude = rng.choice(2000, 300, replace=False)

    got = top_k(scores, exclude, 25)

    candidates = sorted(set(range(2000)) - set(exclude.tolist()))
    assert got.tolist() == sorted(candidates, key=lambda i: (-scores[i], i))[:25]


@given(data=st.data(), scores=scores_st, k=st.integers(1, 30))
def test_top_k_matches_brute_force(data: st.DataObject, scores: np.ndarray, k: int) -> None:
    n = scores.size
    exclude = data.draw(st.lists(st.integers(0, n - 1), max_size=n))

    got = top_k(scores, np.array(exclude, dtype=np.int64), k)

    candidates = [i for i in range(n) if i not in exclude]
    expected = sorted(candidates, key=lambda i: (-scores[i], i))[:k]
    assert got.tolist() == expected
    assert not set(got.tolist()) & set(exclude)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-5, 5), min_size=1, max_size=30),
    st.sets(st.integers(0, 29)),
    st.integers(1, 15),
)
def test_a_filled_top_k_is_sorted_full_length_and_puts_excluded_last(
    scores: list[float], exclude: set[int], k: int
) -> None:
    # Prepare
    s = np.array(scores)
    excluded = np.array(sorted(i for i in exclude if i < s.size), np.int64)
    # Execute
    top = top_k(s, excluded, k, fill=True)
    # Assert
    assert len(top) == min(k, s.size) == len(set(top.tolist()))
    masked = s.copy()
    masked[excluded] = -np.inf
    ordered = masked[top]
    assert all(a >= b for a, b in zip(ordered, ordered[1:], strict=False))  # best first
    kept = s.size - excluded.size
    assert not set(top[: min(k, kept)].tolist()) & set(excluded.tolist())
    assert np.array_equal(top[: min(k, kept)], top_k(s, excluded, k))
