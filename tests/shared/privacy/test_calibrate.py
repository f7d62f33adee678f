"""Calibration: the smallest σ within a target ε, for DP-SGD, user-level rounds, releases."""

import logging

import dp_accounting as dpa
import pytest
from dp_accounting.pld import pld_privacy_accountant

from fedrec.shared.privacy import (
    account,
    calibrate_release,
    calibrate_user,
    default_delta,
    release_epsilon,
    smallest_sigma,
)


def test_calibration_finds_the_smallest_sigma_within_tolerance() -> None:
    sigma = smallest_sigma(lambda s: 10.0 / s, 2.0, epsilon_rtol=0.01)
    assert 10.0 / sigma <= 2.0
    assert 10.0 / sigma >= 0.99 * 2.0
    with pytest.raises(ValueError):
        smallest_sigma(lambda s: 1.0 / s, float("inf"))


@pytest.mark.parametrize(("q", "rounds"), [(1.0, 5), (0.1, 20)])
@pytest.mark.parametrize("target", [0.5, 8.0])
def test_user_level_sigma_hits_the_target_epsilon(q: float, rounds: int, target: float) -> None:
    delta = default_delta(943)
    cal = calibrate_user(target, q=q, rounds=rounds, delta=delta)
    reached = account([(cal["sigma"], q, rounds)], delta, "rdp").epsilon
    assert reached == pytest.approx(cal["planned_epsilon"])
    assert 0.99 * target <= reached <= target


@pytest.mark.parametrize("epsilon", [0.5, 1.0, 4.0, 8.0])
def test_noise_multiplier_is_the_smallest_within_the_target(epsilon: float) -> None:
    delta = default_delta(943)

    sigma = calibrate_release(epsilon, delta)

    assert release_epsilon(sigma, delta) <= epsilon
    assert release_epsilon(sigma * 0.999, delta) > epsilon


def test_accounted_epsilon_agrees_with_an_independent_accountant() -> None:
    # One Gaussian mechanism: Google's tight PLD accountant must not find more loss than
    # the project's RDP bound at the calibrated sigma, and not much less.
    logging.getLogger("absl").setLevel(logging.ERROR)
    delta = default_delta(943)
    sigma = calibrate_release(4.0, delta)

    pld = pld_privacy_accountant.PLDAccountant()
    pld.compose(dpa.GaussianDpEvent(sigma))

    assert 0.7 * 4.0 < pld.get_epsilon(delta) <= release_epsilon(sigma, delta) <= 4.0


def test_a_release_calibration_refuses_a_target_it_cannot_mean() -> None:
    with pytest.raises(ValueError, match="epsilon"):
        calibrate_release(float("inf"), 1e-5)
    with pytest.raises(ValueError, match="delta"):
        calibrate_release(1.0, 1.5)
