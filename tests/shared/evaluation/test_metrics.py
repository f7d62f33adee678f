import math
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedrec.shared.evaluation.metrics import (
    catalogue_coverage,
    genre_matrix,
    hit_multi_at_k,
    hit_rate_at_k,
    intra_list_diversity,
    mean_popularity_rank,
    mrr_at_k,
    ndcg_at_k,
    ndcg_multi_at_k,
    popularity_rank,
    recall_at_k,
)

ranks_st = st.lists(st.integers(min_value=0, max_value=50), max_size=30)


def test_hand_computed_ranks() -> None:
    # Prepare: ranks 0, 1, 2, 9, 10 with k = 10.
    ranks = np.array([0, 1, 2, 9, 10])

    # Execute
    hr = hit_rate_at_k(ranks, 10)
    ndcg = ndcg_at_k(ranks, 10)
    mrr = mrr_at_k(ranks, 10)

    # Assert: hit for rank < 10; NDCG 1/log2(rank+2): 1, 1/log2(3)=0.6309, 1/log2(4)=0.5,
    # 1/log2(11)=0.2891, and 0 past the cut-off; MRR 1, 1/2, 1/3, 1/10, 0.
    np.testing.assert_array_equal(hr, [1, 1, 1, 1, 0])
    np.testing.assert_allclose(ndcg, [1.0, 0.6309297535714575, 0.5, 0.2890648263178879, 0.0])
    np.testing.assert_allclose(mrr, [1.0, 0.5, 1 / 3, 0.1, 0.0])


def test_k_one_only_rank_zero_counts() -> None:
    ranks = np.array([0, 1, 5])
    np.testing.assert_array_equal(hit_rate_at_k(ranks, 1), [1, 0, 0])
    np.testing.assert_array_equal(ndcg_at_k(ranks, 1), [1, 0, 0])


def test_empty_ranks_give_empty_arrays() -> None:
    assert hit_rate_at_k([], 10).shape == (0,)
    assert ndcg_at_k(np.array([], dtype=np.int64), 10).shape == (0,)


@pytest.mark.parametrize("fn", [hit_rate_at_k, ndcg_at_k, mrr_at_k])
def test_invalid_inputs_raise(fn: Callable[..., np.ndarray]) -> None:
    with pytest.raises(ValueError, match="k must be"):
        fn(np.array([0]), 0)
    with pytest.raises(ValueError, match=">= 0"):
        fn(np.array([0, -1]), 5)
    with pytest.raises(ValueError, match="integers"):
        fn(np.array([0.5]), 5)


@given(ranks=ranks_st, k=st.integers(min_value=1, max_value=40))
def test_rank_metrics_match_brute_force(ranks: list[int], k: int) -> None:
    expected_hr = [1.0 if r < k else 0.0 for r in ranks]
    expected_ndcg = [1.0 / math.log2(r + 2) if r < k else 0.0 for r in ranks]
    expected_mrr = [1.0 / (r + 1) if r < k else 0.0 for r in ranks]

    np.testing.assert_array_equal(hit_rate_at_k(ranks, k), expected_hr)
    np.testing.assert_allclose(ndcg_at_k(ranks, k), expected_ndcg, rtol=1e-12)
    np.testing.assert_allclose(mrr_at_k(ranks, k), expected_mrr, rtol=1e-12)


@given(ranks=ranks_st, k=st.integers(min_value=1, max_value=40))
def test_metrics_ordered_and_bounded(ranks: list[int], k: int) -> None:
    # NDCG and MRR never exceed HR and are in [0, 1]; MRR <= NDCG since 1/(r+1) <= 1/log2(r+2).
    hr, ndcg, mrr = hit_rate_at_k(ranks, k), ndcg_at_k(ranks, k), mrr_at_k(ranks, k)
    assert ((0 <= mrr) & (mrr <= ndcg + 1e-12) & (ndcg <= hr) & (hr <= 1)).all()


def test_recall_hand_computed() -> None:
    # User 0: relevant {1, 2, 3}, recommended {1, 3} -> 2/3. User 1: relevant {4}, not
    # recommended -> 0. User 2: padding (-1) never counts; relevant {5} found -> 1.
    top = np.array([[1, 3, 7], [0, 1, 2], [5, -1, -1]])
    relevant = [np.array([1, 2, 3]), np.array([4]), np.array([5, 5])]

    np.testing.assert_allclose(recall_at_k(top, relevant), [2 / 3, 0.0, 1.0])


def test_recall_empty_relevant_is_nan_and_shapes_checked() -> None:
    assert np.isnan(recall_at_k(np.array([[0, 1]]), [np.array([], dtype=np.int64)])[0])
    with pytest.raises(ValueError, match="one array of held-out items per user"):
        recall_at_k(np.array([[0, 1]]), [])
    with pytest.raises(ValueError, match="2-D"):
        recall_at_k(np.array([0, 1]), [np.array([0])])


@given(
    data=st.data(),
    n_users=st.integers(min_value=1, max_value=6),
    k=st.integers(min_value=1, max_value=5),
)
def test_recall_matches_brute_force(data: st.DataObject, n_users: int, k: int) -> None:
    items = st.integers(min_value=-1, max_value=9)
    rows = [data.draw(st.lists(items, min_size=k, max_size=k)) for _ in range(n_users)]
    relevant = [
        np.array(data.draw(st.lists(st.integers(0, 9), min_size=1, max_size=5)))
        for _ in range(n_users)
    ]

    got = recall_at_k(np.array(rows), relevant)

    for row, rel, value in zip(rows, relevant, got, strict=True):
        wanted = set(rel.tolist())
        assert value == pytest.approx(len(wanted & set(row)) / len(wanted))


def test_coverage_hand_computed() -> None:
    # Items {0, 1, 2, 4} of 8 appear -> 0.5; padding -1 ignored.
    top = np.array([[0, 1], [1, 2], [4, -1]])
    assert catalogue_coverage(top, 8) == 0.5
    assert catalogue_coverage(np.zeros((0, 3), dtype=np.int64), 8) == 0.0


def test_coverage_rejects_out_of_range() -> None:
    with pytest.raises(ValueError, match="only 3 items"):
        catalogue_coverage(np.array([[0, 3]]), 3)
    with pytest.raises(ValueError, match="n_items"):
        catalogue_coverage(np.array([[0]]), 0)


@given(
    rows=st.lists(st.lists(st.integers(-1, 19), min_size=3, max_size=3), max_size=10),
    n_items=st.integers(min_value=20, max_value=30),
)
def test_coverage_matches_brute_force(rows: list[list[int]], n_items: int) -> None:
    top = np.array(rows, dtype=np.int64).reshape(-1, 3)
    expected = len({i for row in rows for i in row if i >= 0}) / n_items
    assert catalogue_coverage(top, n_items) == pytest.approx(expected)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 30), min_size=1, max_size=10, unique=True),
    st.lists(st.integers(0, 30), min_size=1, max_size=15, unique=True),
)
def test_ndcg_multi_matches_its_definition(top: list[int], rel: list[int]) -> None:
    got = ndcg_multi_at_k(np.array([top]), [np.array(rel)])[0]
    dcg = sum(1 / np.log2(r + 2) for r, item in enumerate(top) if item in rel)
    idcg = sum(1 / np.log2(r + 2) for r in range(min(len(rel), len(top))))
    assert got == pytest.approx(dcg / idcg)
    assert 0.0 <= got <= 1.0 + 1e-12
    assert hit_multi_at_k(np.array([top]), [np.array(rel)])[0] == float(bool(set(top) & set(rel)))


@given(st.integers(0, 9), st.integers(10, 40))
def test_ndcg_multi_with_one_relevant_item_is_leave_one_out_ndcg(rank: int, n: int) -> None:
    top = np.arange(10) + 100
    target = int(top[rank])
    got = ndcg_multi_at_k(top[None, :], [np.array([target])])[0]
    assert got == pytest.approx(ndcg_at_k(np.array([rank]), 10)[0])


def test_ndcg_multi_perfect_ranking_and_users_without_relevant_items() -> None:
    top = np.array([[1, 2, 3], [4, 5, 6]])
    out = ndcg_multi_at_k(top, [np.array([3, 2, 1, 9]), np.array([], dtype=np.int64)])
    assert out[0] == pytest.approx(1.0) and np.isnan(out[1])


# ---------------------------------------------------------------- beyond accuracy


def test_genre_matrix_columns_sorted_by_name() -> None:
    got = genre_matrix([["Drama"], ["Action", "Drama"], []])
    np.testing.assert_array_equal(got, [[0, 1], [1, 1], [0, 0]])


def test_intra_list_diversity_hand_computed() -> None:
    # Items 0 {Action}, 1 {Action, Comedy}, 2 {Drama}: cosines 1/sqrt(2), 0, 0 over the
    # three pairs, so ILD = 1 - (1/sqrt(2)) / 3. A list of one item has no pair: NaN.
    features = genre_matrix([["Action"], ["Action", "Comedy"], ["Drama"]])
    top = np.array([[0, 1, 2], [0, 0, -1], [2, -1, -1]])

    got = intra_list_diversity(top, features)

    np.testing.assert_allclose(got[:2], [1 - (1 / math.sqrt(2)) / 3, 0.0])
    assert math.isnan(got[2])


def _brute_ild(row: list[int], features: np.ndarray) -> float:
    items = [i for i in row if i >= 0]
    distances = []
    for a in range(len(items)):
        for b in range(a + 1, len(items)):
            fa, fb = features[items[a]], features[items[b]]
            na, nb = math.sqrt(float(fa @ fa)), math.sqrt(float(fb @ fb))
            cos = float(fa @ fb) / (na * nb) if na > 0 and nb > 0 else 0.0
            distances.append(1.0 - cos)
    return sum(distances) / len(distances) if distances else math.nan


@settings(max_examples=80, deadline=None)
@given(
    data=st.data(),
    n_items=st.integers(min_value=1, max_value=8),
    n_features=st.integers(min_value=1, max_value=4),
    k=st.integers(min_value=1, max_value=5),
)
def test_intra_list_diversity_matches_brute_force(
    data: st.DataObject, n_items: int, n_features: int, k: int
) -> None:
    features = np.array(
        data.draw(
            st.lists(
                st.lists(st.sampled_from([0.0, 1.0]), min_size=n_features, max_size=n_features),
                min_size=n_items,
                max_size=n_items,
            )
        )
    )
    rows = data.draw(
        st.lists(st.lists(st.integers(-1, n_items - 1), min_size=k, max_size=k), max_size=6)
    )

    got = intra_list_diversity(np.array(rows, dtype=np.int64).reshape(-1, k), features)

    expected = [_brute_ild(row, features) for row in rows]
    np.testing.assert_allclose(got, expected, atol=1e-12)
    assert np.all((got[~np.isnan(got)] >= -1e-12) & (got[~np.isnan(got)] <= 1 + 1e-12))


def test_popularity_rank_hand_computed() -> None:
    # Counts 5, 9, 5, 0: item 1 first, items 0 and 2 share ranks 2 and 3, item 3 last.
    np.testing.assert_array_equal(popularity_rank([5, 9, 5, 0]), [2.5, 1.0, 2.5, 4.0])


@given(counts=st.lists(st.integers(0, 6), min_size=1, max_size=15), data=st.data())
def test_popularity_ranks_match_brute_force(counts: list[int], data: st.DataObject) -> None:
    n = len(counts)
    rows = data.draw(st.lists(st.lists(st.integers(-1, n - 1), min_size=3, max_size=3)))

    ranks = popularity_rank(counts)
    got = mean_popularity_rank(np.array(rows, dtype=np.int64).reshape(-1, 3), ranks)

    for i, c in enumerate(counts):
        above = sum(other > c for other in counts)
        tied = sum(other == c for other in counts)
        assert ranks[i] == pytest.approx(above + (tied + 1) / 2)
    for row, value in zip(rows, got, strict=True):
        items = [i for i in row if i >= 0]
        if items:
            assert value == pytest.approx(sum(ranks[i] for i in items) / len(items))
        else:
            assert math.isnan(value)


def test_list_metrics_validate_shapes() -> None:
    with pytest.raises(ValueError, match="2-D"):
        intra_list_diversity(np.array([0, 1]), np.eye(2))
    with pytest.raises(ValueError, match="only 2 items"):
        mean_popularity_rank(np.array([[0, 2]]), np.array([1.0, 2.0]))


def test_sequels_and_subtitles_share_a_franchise_key() -> None:
    from fedrec.shared.evaluation.metrics import franchise

    assert franchise("Star Trek: First Contact (1996)") == "star trek"
    assert franchise("Star Trek VI: The Undiscovered Country (1991)") == "star trek"
    assert franchise("Die Hard 2 (1990)") == franchise("Die Hard: With a Vengeance (1995)")
    assert franchise("Godfather, The (1972)") == franchise("Godfather: Part II, The (1974)")
    assert franchise("Free Willy 2: The Adventure Home (1995)") == "free willy"
    assert franchise("Toy Story (1995)") != franchise("Star Wars (1977)")


def test_largest_franchise_counts_the_biggest_group_and_skips_padding() -> None:
    from fedrec.shared.evaluation.metrics import largest_franchise

    keys = ["a", "a", "b", "a", "c"]
    lists = np.array([[0, 1, 3, 2], [2, 4, -1, -1], [-1, -1, -1, -1]])
    assert largest_franchise(lists, keys).tolist() == [3, 1, 0]
