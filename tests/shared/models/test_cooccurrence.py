"""The co-occurrence statistic: norm 1 for every user, its sum is the Gram matrix."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedrec.shared.models.cooccurrence import contribution, gram_from_vector, vector_size


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
