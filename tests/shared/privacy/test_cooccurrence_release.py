"""The co-occurrence release's noise plan: the sum always carries σ, wherever it is added."""

import math

import numpy as np
import pytest

from fedrec.client.cooccurrence import cooccurrence_share
from fedrec.shared.config import CooccurrenceConfig, PrivacyConfig
from fedrec.shared.models.cooccurrence import contribution
from fedrec.shared.privacy import SeededRandom, release_epsilon
from fedrec.shared.privacy.cooccurrence import plan_release, release_report

COOC = CooccurrenceConfig(cooccurrence_epsilon=2.0)


@pytest.mark.parametrize("placement", ["central", "secagg", "local"])
def test_the_accounted_epsilon_of_the_sum_is_within_the_target(placement: str) -> None:
    privacy = PrivacyConfig(dp_enabled=False, user_dp=placement, secagg_max_colluders=3)
    plan = plan_release(privacy, COOC, 500, survivors=350 if placement == "secagg" else None)
    assert plan.epsilon is not None and plan.epsilon <= 2.0
    assert plan.delta == pytest.approx(1 / 500**1.1)
    assert release_epsilon(plan.noise_multiplier, plan.delta) <= 2.0 + 1e-9
    # the variance that reaches the sum from honest parties is at least σ²
    if placement == "central":
        assert plan.server_std == plan.noise_multiplier and plan.client_std == 0
    elif placement == "secagg":
        honest = plan.survivors - plan.colluders
        assert honest * plan.client_std**2 == pytest.approx(plan.noise_multiplier**2)
        assert plan.server_std == 0
    else:
        assert plan.client_std == plan.noise_multiplier


def test_a_release_without_noise_claims_nothing() -> None:
    plan = plan_release(PrivacyConfig(dp_enabled=False, user_dp="off"), COOC, 100)
    assert plan.noise_multiplier == 0 and plan.epsilon is None
    assert release_report(plan, reproducible_noise=False) is None


def test_the_report_states_unit_epsilon_delta_and_what_it_covers() -> None:
    privacy = PrivacyConfig(dp_enabled=False, user_dp="secagg")
    plan = plan_release(privacy, COOC, 100, survivors=70)
    report = release_report(plan, reproducible_noise=False)
    assert report is not None
    assert report["unit"] == "user" and report["epsilon"] == plan.epsilon
    assert report["delta"] == plan.delta and "every training interaction" in report["covers"]
    seeded = release_report(plan, reproducible_noise=True)
    assert seeded is not None and "does not hold" in seeded["covers"]


def test_a_client_share_carries_its_noise() -> None:
    items = np.array([1, 4, 9])
    exact = contribution(items, 40)
    share = cooccurrence_share(items, 40, 0.5, SeededRandom(3))
    residual = share - exact
    assert residual.std() == pytest.approx(0.5, rel=0.1)
    assert abs(residual.mean()) < 3 * 0.5 / math.sqrt(residual.size)
    np.testing.assert_array_equal(cooccurrence_share(items, 40, 0.0, None), exact)
    with pytest.raises(ValueError, match="random source"):
        cooccurrence_share(items, 40, 0.5, None)
