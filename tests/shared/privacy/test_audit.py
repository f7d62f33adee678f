"""The one-run audit's statistics: valid (rarely fires on a private mechanism), and powerful."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedrec.shared.privacy.audit import epsilon_lower_bound, one_run_audit, p_value, verdict


@given(
    m=st.integers(10, 400),
    data=st.data(),
    eps=st.floats(0, 8),
    delta=st.sampled_from([0.0, 1e-6, 1e-3]),
)
@settings(max_examples=60, deadline=None)
def test_p_value_falls_with_more_correct_guesses_and_rises_with_epsilon(  # type: ignore[no-untyped-def]
    m, data, eps, delta
) -> None:
    r = data.draw(st.integers(1, m))
    v = data.draw(st.integers(0, r - 1))
    assert p_value(m, r, v + 1, eps, delta) <= p_value(m, r, v, eps, delta) + 1e-12
    assert p_value(m, r, v, eps, delta) <= p_value(m, r, v, eps + 0.5, delta) + 1e-12


def test_without_delta_the_p_value_is_the_randomized_response_tail() -> None:
    # r = v = 1 at eps: the chance that one eps-DP guess is right, e^eps / (1 + e^eps).
    assert p_value(10, 1, 1, 1.0, 0.0) == pytest.approx(math.e / (1 + math.e))


def _randomized_response(m: int, eps: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Canaries through an exactly eps-DP channel: the score says the truth w.p. e^eps/(1+e^eps)."""
    rng = np.random.default_rng(seed)
    included = rng.random(m) < 0.5
    truthful = rng.random(m) < math.exp(eps) / (1 + math.exp(eps))
    return np.where(truthful, included, ~included).astype(float), included


def test_an_eps_dp_channel_is_never_audited_above_its_eps() -> None:
    # Validity: at 95% confidence the bound exceeds the true eps in at most ~5% of runs.
    over = 0
    for seed in range(40):
        scores, included = _randomized_response(2000, 1.0, seed)
        result = one_run_audit({"rr": scores}, included, delta=0.0)
        over += result.epsilon_lower_bound > 1.0
    assert over <= 4


def test_a_leaky_mechanism_is_caught_and_a_blind_attacker_finds_nothing() -> None:
    rng = np.random.default_rng(0)
    included = rng.random(1000) < 0.5
    perfect = one_run_audit({"oracle": included.astype(float)}, included, delta=1e-5)
    assert perfect.epsilon_lower_bound > 3.0 and perfect.correct == perfect.guesses
    blind = one_run_audit({"noise": rng.normal(size=1000)}, included, delta=1e-5)
    assert blind.epsilon_lower_bound < 1.0
    constant = one_run_audit({"constant": np.zeros(1000)}, included, delta=1e-5)
    assert constant.epsilon_lower_bound == 0.0  # ties count against the attacker


def test_more_attackers_split_the_confidence() -> None:
    rng = np.random.default_rng(1)
    included = rng.random(500) < 0.5
    one = one_run_audit({"a": included.astype(float)}, included, delta=0.0)
    many = one_run_audit(
        {"a": included.astype(float), "b": rng.normal(size=500), "c": rng.normal(size=500)},
        included,
        delta=0.0,
    )
    assert many.tests == 3 * one.tests
    assert many.epsilon_lower_bound < one.epsilon_lower_bound


def test_the_bound_is_monotone_in_correct_guesses() -> None:
    bounds = [epsilon_lower_bound(1000, 200, v, 1e-5) for v in (100, 140, 180, 200)]
    assert bounds == sorted(bounds) and bounds[0] == 0.0 and bounds[-1] > 2.0


def test_power_is_what_a_perfect_attacker_would_certify() -> None:
    rng = np.random.default_rng(2)
    included = rng.random(400) < 0.5
    perfect = one_run_audit({"oracle": included.astype(float)}, included, delta=1e-5)
    blind = one_run_audit({"noise": rng.normal(size=400)}, included, delta=1e-5)
    assert perfect.power == pytest.approx(perfect.epsilon_lower_bound)
    assert blind.power == perfect.power  # a property of the canaries, not of the attack
    more = one_run_audit(
        {"oracle": np.r_[included, included].astype(float)}, np.r_[included, included], delta=1e-5
    )
    assert more.power > perfect.power


def test_verdicts_of_the_product_and_of_controls() -> None:
    assert verdict(1.0, 4.0, 6.0, control=False) == "holds"
    assert verdict(4.5, 4.0, 6.0, control=False) == "VIOLATED"
    assert verdict(4.5, 4.0, 6.0, control=True) == "caught"
    assert verdict(3.0, 4.0, 6.0, control=True) == "missed"
    # A claim no perfect attacker could certify with these canaries cannot be caught.
    assert verdict(3.0, 4.0, 3.5, control=True) == "beyond power"
