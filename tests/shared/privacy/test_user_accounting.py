"""User-level accounting: RDP and PRV, PRV's fallback, the report's unit, scope and delta."""

import logging

import pytest

from fedrec.shared.config import resolve_config
from fedrec.shared.errors import AccountingError
from fedrec.shared.privacy import (
    account,
    compress,
    default_delta,
    epsilon_of,
    resolve_delta,
    user_report,
)
from fedrec.shared.privacy.accounting import prv_epsilon


def test_rdp_is_the_record_level_arithmetic_and_prv_is_tighter() -> None:
    history = [(1.0, 0.1, 50)]
    rdp = account(history, 1e-5, "rdp")
    prv = account(history, 1e-5, "prv")
    assert rdp.accountant == "rdp" and rdp.epsilon == epsilon_of(history, 1e-5)
    assert prv.accountant == "prv" and prv.note is None
    assert 0.8 * rdp.epsilon < prv.epsilon < rdp.epsilon


def test_more_rounds_less_noise_more_sampling_cost_more() -> None:
    def eps(sigma: float, q: float, rounds: int) -> float:
        return account([(sigma, q, rounds)], 1e-5, "rdp").epsilon

    assert eps(1.0, 0.1, 20) < eps(1.0, 0.1, 40)
    assert eps(2.0, 0.1, 20) < eps(1.0, 0.1, 20)
    assert eps(1.0, 0.1, 20) < eps(1.0, 1.0, 20)
    assert account([], 1e-5, "prv").epsilon == 0.0


def test_prv_that_cannot_be_computed_falls_back_to_rdp_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # σ = 0.1 without sampling: PRV's grid would need ~10^9 points (gigabytes).
    history = [(0.1, 1.0, 1000)]
    with pytest.raises(AccountingError, match="grid points"):
        prv_epsilon(history, 1e-5)
    with caplog.at_level(logging.WARNING):
        got = account(history, 1e-5, "prv")
    assert got.accountant == "rdp" and got.epsilon == epsilon_of(history, 1e-5)
    assert got.note is not None and got.note.startswith("prv unavailable")
    assert "reporting the RDP bound instead" in caplog.text


def test_default_delta_is_below_one_over_n() -> None:
    assert default_delta(1000) == pytest.approx(1000**-1.1)
    assert default_delta(1000) < 1 / 1000
    cfg = resolve_config({}, {"user-delta": 1e-6})
    assert resolve_delta(cfg.privacy, 1000) == 1e-6
    assert resolve_delta(resolve_config({}, {}).privacy, 943) == pytest.approx(943**-1.1)


def test_compress_merges_runs_of_equal_rounds() -> None:
    assert compress([(1.0, 0.5, 1), (1.0, 0.5, 2), (1.0, 0.25, 1), (1.0, 0.5, 1)]) == [
        (1.0, 0.5, 3),
        (1.0, 0.25, 1),
        (1.0, 0.5, 1),
    ]


@pytest.mark.parametrize("placement", ["central", "local", "secagg"])
def test_report_states_unit_placement_and_both_views(placement: str) -> None:
    privacy = resolve_config({}, {"user-dp": placement, "user-accountant": "prv"}).privacy
    report = user_report(
        privacy, history=[(1.0, 0.2, 5)], delta=1e-4, n_clients=50, epsilon_against_server=3.0
    )
    assert report is not None
    assert report["unit"] == "user" and report["placement"] == placement
    assert report["accountant"] == "prv" and report["rounds"] == 5
    assert report["sample_rate"] == 0.2 and report["delta"] == 1e-4
    assert report["epsilon"] == account([(1.0, 0.2, 5)], 1e-4, "prv").epsilon
    # The server sees raw updates under central placement: no guarantee against it.
    assert report["epsilon_against_server"] == (None if placement == "central" else 3.0)
    assert "covers" in report and "mechanism" in report


def test_no_report_when_user_level_dp_is_off() -> None:
    privacy = resolve_config({}, {}).privacy
    assert (
        user_report(privacy, history=[], delta=1e-5, n_clients=1, epsilon_against_server=0) is None
    )


@pytest.mark.parametrize(
    ("key", "value", "needle"),
    [
        ("user-dp", "server", "user-dp must be one of"),
        ("user-clip", 0.0, "user-clip"),
        ("user-accountant", "gdp", "user-accountant must be one of"),
        ("user-delta", 1.0, "user-delta"),
        ("secagg-reconstruction-threshold", 0.0, "secagg-reconstruction-threshold"),
    ],
)
def test_bad_user_level_settings_say_why(key: str, value: object, needle: str) -> None:
    from fedrec.shared.errors import ConfigError

    with pytest.raises(ConfigError, match=needle):
        resolve_config({}, {key: value})


@pytest.mark.parametrize("placement", ["central", "secagg"])
def test_sum_noise_needs_the_mean(placement: str) -> None:
    from fedrec.shared.errors import ConfigError

    with pytest.raises(ConfigError, match="aggregation=mean"):
        resolve_config({}, {"user-dp": placement, "aggregation": "median"})
    # Local noise protects every update by itself: robust aggregation is post-processing.
    resolve_config({}, {"user-dp": "local", "aggregation": "median"})
