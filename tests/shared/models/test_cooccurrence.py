"""The co-occurrence statistic: norm 1 for every user, its sum is the Gram matrix."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedrec.shared.models.cooccurrence import (
    contribution,
    ease_factors,
    gram_from_vector,
    spectral_factors,
    user_vector,
    vector_size,
)


@given(items=st.lists(st.integers(0, 11), max_size=30))
@settings(max_examples=60, deadline=None)
def test_every_user_contributes_norm_one_or_nothing(items: list[int]) -> None:
    vec = contribution(np.array(items, dtype=np.int64), 12)
    assert vec.shape == (vector_size(12),)
    assert np.linalg.norm(vec) == pytest.approx(1.0 if items else 0.0)


def test_the_sum_of_contributions_is_the_normalised_gram_matrix() -> None:
    rng = np.random.default_rng(0)
    users = [rng.choice(20, int(rng.integers(1, 10)), replace=False) for _ in range(30)]
    total = sum(contribution(u, 20) for u in users)
    expected = np.zeros((20, 20))
    for u in users:
        x = np.zeros(20)
        x[u] = 1.0
        expected += np.outer(x, x) / len(u)
    np.testing.assert_allclose(gram_from_vector(total, 20), expected, atol=1e-12)


def test_noise_on_the_vector_is_halved_off_the_diagonal() -> None:
    # N(0, 1) on every released entry is N(0, 1/2) on each off-diagonal matrix entry.
    rng = np.random.default_rng(1)
    noise = gram_from_vector(rng.normal(size=vector_size(300)), 300)
    off = noise[np.triu_indices(300, 1)]
    assert off.var() == pytest.approx(0.5, rel=0.02)
    assert np.diag(noise).var() == pytest.approx(1.0, rel=0.2)
    np.testing.assert_array_equal(noise, noise.T)


def test_bad_items_are_refused() -> None:
    with pytest.raises(ValueError, match="item indices"):
        contribution(np.array([3, 12]), 12)


@given(items=st.lists(st.integers(0, 40), min_size=1, max_size=40))
@settings(max_examples=60, deadline=None)
def test_the_term_is_the_outer_product_over_the_count(items: list[int]) -> None:
    x = np.zeros(41)
    x[items] = 1.0
    term = gram_from_vector(contribution(np.array(items), 41), 41)
    np.testing.assert_allclose(term, np.outer(x, x) / x.sum(), atol=1e-12)


def test_spectral_factors_are_the_best_low_rank_square_root() -> None:
    rng = np.random.default_rng(1)
    basis = np.linalg.qr(rng.normal(size=(30, 30)))[0]
    values = np.array([9.0, 4.0, 1.0] + [0.0] * 27)
    gram = (basis * values) @ basis.T
    factors = spectral_factors(gram, 3)
    assert factors.shape == (30, 3)
    np.testing.assert_allclose(factors @ factors.T, gram, atol=1e-5)
    # rank 1 keeps the top direction only, and negative eigenvalues never count
    top = spectral_factors(gram - 2.0 * np.eye(30), 1)
    np.testing.assert_allclose(top @ top.T, 7.0 * np.outer(basis[:, 0], basis[:, 0]), atol=1e-5)
    np.testing.assert_array_equal(spectral_factors(gram, 3), factors)  # deterministic signs


def test_spectral_factors_refuse_a_bad_rank() -> None:
    with pytest.raises(ValueError, match="rank"):
        spectral_factors(np.eye(4), 5)


def test_the_content_part_fades_as_the_history_grows() -> None:
    factors = np.hstack([np.ones((10, 2)), np.full((10, 3), 2.0)])
    one = user_vector(factors, np.array([0]), rank=2, fade=2.0)
    many = user_vector(factors, np.arange(8), rank=2, fade=2.0)
    np.testing.assert_allclose(one, [1, 1, 4 / 3, 4 / 3, 4 / 3])
    np.testing.assert_allclose(many, [1, 1, 0.4, 0.4, 0.4])
    np.testing.assert_allclose(user_vector(factors, np.arange(3), rank=2, fade=0.0)[2:], 0.0)
    assert not user_vector(factors, np.zeros(0, np.int64), rank=2, fade=2.0).any()


def _edlae_symmetric_scores(gram: np.ndarray, l2: float, dropout: float) -> np.ndarray:
    g = gram.copy()
    g[np.diag_indices_from(g)] += l2 + dropout / (1 - dropout) * np.diag(gram)
    p = np.linalg.inv(g)
    root = 1 / np.sqrt(np.diag(p))
    return -p * root[:, None] * root[None, :]


@pytest.mark.parametrize("dropout", [0.0, 0.5])
def test_ease_factors_rank_a_users_other_items_as_edlae_does(dropout: float) -> None:
    rng = np.random.default_rng(5)
    n = 30
    users = [rng.choice(n, rng.integers(2, 9), replace=False) for _ in range(200)]
    gram = sum(np.outer(np.isin(np.arange(n), u), np.isin(np.arange(n), u)) / len(u) for u in users)
    factors = ease_factors(gram, 0.5, dropout)
    expected = _edlae_symmetric_scores(gram, 0.5, dropout)
    for items in users[:20]:
        user = factors[items].mean(axis=0)
        ours = factors @ user
        theirs = expected[items].sum(axis=0)
        others = np.setdiff1d(np.arange(n), items)
        # the same scores up to a positive factor, on every item the user does not hold
        a, b = ours[others], theirs[others]
        scale = float(a @ b / (b @ b))
        assert scale > 0
        np.testing.assert_allclose(a, scale * b, atol=1e-5 * np.abs(a).max())
    # scaled like the spectral factors: the largest eigenvalue of F Fᵀ is 1
    assert np.linalg.eigvalsh(factors.astype(np.float64) @ factors.T)[-1] == pytest.approx(1.0)


def test_ease_factors_refuse_bad_penalties() -> None:
    gram = np.eye(4)
    with pytest.raises(ValueError, match="dropout"):
        ease_factors(gram, 1.0, 1.0)
    with pytest.raises(ValueError, match="L2"):
        ease_factors(gram, 0.0)
    with pytest.raises(ValueError, match="square"):
        ease_factors(np.ones((2, 3)), 1.0)


def test_row_sums_of_the_summed_terms_count_each_items_users() -> None:
    from fedrec.shared.models.cooccurrence import contribution, vector_row_sums

    rng = np.random.default_rng(0)
    n = 7
    users = [rng.choice(n, size=rng.integers(1, n), replace=False) for _ in range(30)]
    total = sum(contribution(items, n) for items in users)
    counts = np.bincount(np.concatenate(users), minlength=n)
    np.testing.assert_allclose(vector_row_sums(total, n), counts, atol=1e-9)
