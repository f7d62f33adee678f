"""User-level DP primitives: the clip bound holds, the noise has the std each placement needs."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fedrec.shared.privacy import (
    SecureRandom,
    SeededRandom,
    clip_update,
    gaussian_noise_like,
    noise_std,
    privatize,
    share_survivors,
    survivor_floor,
    update_norm,
)


def _update(rng: np.random.Generator, scale: float) -> dict[str, np.ndarray]:
    return {
        "item_factors": (rng.standard_normal((50, 8)) * scale).astype(np.float32),
        "item_bias": (rng.standard_normal(50) * scale).astype(np.float32),
    }


@pytest.mark.parametrize("scale", [1e-3, 0.1, 10.0])
def test_clip_bounds_the_joint_norm_of_all_tensors(scale: float) -> None:
    update = _update(np.random.default_rng(0), scale)
    clipped, factor = clip_update(update, 1.0)
    assert update_norm(clipped) <= 1.0 + 1e-5
    if update_norm(update) <= 1.0:  # small updates pass unchanged
        assert factor == 1.0
        np.testing.assert_array_equal(clipped["item_bias"], update["item_bias"])
    else:  # large ones are scaled as a whole: direction kept, norm exactly the bound
        assert update_norm(clipped) == pytest.approx(1.0, rel=1e-5)
        np.testing.assert_allclose(clipped["item_factors"], update["item_factors"] * factor)


def test_noise_std_per_placement() -> None:
    assert noise_std("central", 1.5, 2.0) == pytest.approx(3.0)
    assert noise_std("local", 1.5, 2.0) == pytest.approx(3.0)
    # Each of at least t survivors adds variance (σC)²/t: the sum carries (σC)² at least.
    assert noise_std("secagg", 1.5, 2.0, survivors=4) == pytest.approx(1.5)
    with pytest.raises(ValueError, match="survivors"):
        noise_std("secagg", 1.0, 1.0)
    with pytest.raises(ValueError, match="placement"):
        noise_std("off", 1.0, 1.0)


def test_privatized_update_is_clipped_plus_noise_of_the_asked_std() -> None:
    update = _update(np.random.default_rng(1), 10.0)  # norm >> clip
    sent, scale = privatize(update, 1.0, 0.5, SeededRandom(2))
    clipped, _ = clip_update(update, 1.0)
    noise = np.concatenate([(sent[k] - clipped[k]).ravel() for k in update])
    assert scale < 1.0
    assert noise.std() == pytest.approx(0.5, rel=0.05)  # 450 coordinates
    assert abs(noise.mean()) < 0.1
    assert np.all(noise != 0)  # every coordinate of every tensor


def test_noise_is_dense_even_for_a_zero_update() -> None:
    zero = {"item_factors": np.zeros((1000, 4), np.float32)}
    noise = gaussian_noise_like(zero, 2.0, SeededRandom(0))["item_factors"]
    assert np.count_nonzero(noise) == noise.size
    assert noise.std() == pytest.approx(2.0, rel=0.03)


def test_noise_generator_is_not_reproducible_from_any_seed() -> None:
    # Two generators keyed from the OS's entropy differ; the run seed (public) plays no part.
    a, b = SecureRandom().normal(8), SecureRandom().normal(8)
    assert not np.array_equal(a, b)


def test_secagg_shares_are_sized_for_colluders() -> None:
    # c colluding survivors can subtract their own shares: the other t - c must carry all
    # of (σC)², so each share is σC / sqrt(t - c).
    assert noise_std("secagg", 2.0, 0.5, survivors=10, colluders=3) == pytest.approx(1.0 / 7**0.5)
    assert noise_std("secagg", 2.0, 0.5, survivors=10) == pytest.approx(1.0 / 10**0.5)
    with pytest.raises(ValueError, match="needs more than that many survivors"):
        noise_std("secagg", 2.0, 0.5, survivors=3, colluders=3)


@given(n=st.integers(1, 100_000), fraction=st.floats(0, 1), threshold=st.integers(2, 50))
def test_shares_are_sized_for_at_least_the_floor_and_the_threshold(
    n: int, fraction: float, threshold: int
) -> None:
    floor = survivor_floor(n, fraction)
    assert 0 <= floor <= n and floor >= fraction * n - 1e-6  # never below the fraction
    assert floor < fraction * n + 1  # and no more than rounding up
    assert share_survivors(threshold, n, fraction) == max(threshold, floor)


def test_the_survivor_floor_rounds_up_and_is_off_at_zero() -> None:
    assert survivor_floor(943, 0.9) == 849  # 848.7
    assert survivor_floor(10, 0.7) == 7  # 7.000000000000001 in floating point
    assert survivor_floor(943, 0.0) == 0 and share_survivors(5, 943, 0.0) == 5
    with pytest.raises(ValueError, match="fraction"):
        survivor_floor(10, 1.5)
