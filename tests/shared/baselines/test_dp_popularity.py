"""DP popularity: the sensitivity bound, the noise scale, and the accounted epsilon."""

from __future__ import annotations

import numpy as np
import pytest

from fedrec.shared.baselines import DPPopularity
from fedrec.shared.baselines.dp_popularity import user_contributions
from fedrec.shared.privacy import SeededRandom, calibrate_release, default_delta

from .helpers import make_split


def heavy_and_light(n_items: int, light_users: int = 5) -> list[tuple[int, int]]:
    """User 0 trained on every item; the others on items u and u + 1 only."""
    train = [(0, i) for i in range(n_items)]
    return train + [(u, i) for u in range(1, light_users + 1) for i in (u, u + 1)]


def test_every_user_contributes_at_most_norm_one_whatever_their_history() -> None:
    # Prepare: one user with the whole catalogue, a few with two items, one with none.
    n_items, light = 500, 5
    train = heavy_and_light(n_items, light)
    with_heavy = make_split(train, [-1] * (light + 2), [-1] * (light + 2), n_items)
    without = make_split(
        [(u, i) for u, i in train if u != 0], [-1] * (light + 2), [-1] * (light + 2), n_items
    )

    # Execute
    rows = user_contributions(with_heavy)
    sums = [np.asarray(user_contributions(s).sum(axis=0)).ravel() for s in (with_heavy, without)]

    # Assert: norms 1 (the user with no items: 0), and removing the heavy user moves the
    # released sum by exactly the sensitivity, 1.
    norms = np.sqrt(np.asarray(rows.multiply(rows).sum(axis=1)).ravel())
    np.testing.assert_allclose(norms, [1.0] * (light + 1) + [0.0])
    assert np.linalg.norm(sums[0] - sums[1]) == pytest.approx(1.0)


def test_released_noise_has_the_accounted_scale() -> None:
    # Prepare: many items, so the released minus the exact sums estimate sigma closely.
    n_items, light = 20_000, 5
    split = make_split(heavy_and_light(n_items, light), [-1] * 6, [-1] * 6, n_items)
    exact = np.asarray(user_contributions(split).sum(axis=0)).ravel()

    # Execute
    model = DPPopularity(epsilon=2.0).fit(split)
    noise = model.score(np.array([0]))[0] - exact

    # Assert: N(0, sigma^2) on every item, at the sigma that spends the target; delta 1/N^1.1.
    release = model.fitted()
    assert release["delta"] == pytest.approx(default_delta(6))
    assert release["epsilon"] <= 2.0 and release["unit"] == "user"
    assert release["noise_multiplier"] == pytest.approx(calibrate_release(2.0, release["delta"]))
    assert abs(noise.mean()) < 0.05 * release["noise_multiplier"]
    assert noise.std() == pytest.approx(release["noise_multiplier"], rel=0.03)


def test_noise_comes_from_the_dp_source() -> None:
    split = make_split(heavy_and_light(50), [-1] * 6, [-1] * 6, 50)
    exact = np.asarray(user_contributions(split).sum(axis=0)).ravel()

    model = DPPopularity(epsilon=1.0, rng=SeededRandom(7)).fit(split)

    sigma = model.fitted()["noise_multiplier"]
    expected = exact + SeededRandom(7).normal(50, sigma)
    np.testing.assert_allclose(model.score(np.array([1]))[0], expected)


def test_two_releases_draw_fresh_noise() -> None:
    split = make_split(heavy_and_light(50), [-1] * 6, [-1] * 6, 50)
    a = DPPopularity(epsilon=1.0).fit(split).score(np.array([0]))
    b = DPPopularity(epsilon=1.0).fit(split).score(np.array([0]))
    assert not np.array_equal(a, b)


def test_invalid_budgets_are_refused() -> None:
    with pytest.raises(ValueError, match="epsilon"):
        DPPopularity(epsilon=0.0)
    with pytest.raises(ValueError, match="delta"):
        DPPopularity(epsilon=1.0, delta=1.5)
    with pytest.raises(ValueError, match="epsilon"):
        calibrate_release(float("inf"), 1e-5)
