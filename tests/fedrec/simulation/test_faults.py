"""Simulated faults are seeded, per client and round, and close to their rates."""

import pytest

from fedrec.shared.config import resolve_config
from fedrec.shared.errors import ConfigError
from fedrec.simulation.faults import (
    FaultConfig,
    SimulatedClientFailure,
    inject_faults,
    split_faults,
)


def _fails(rate: float, pid: int, rnd: int) -> bool:
    try:
        inject_faults(FaultConfig(failure_rate=rate), seed=1, partition_id=pid, server_round=rnd)
    except SimulatedClientFailure:
        return True
    return False


def test_failures_follow_the_rate_and_are_reproducible() -> None:
    draws = [_fails(0.3, pid, 1) for pid in range(2000)]
    assert 0.26 < sum(draws) / len(draws) < 0.34
    assert draws == [_fails(0.3, pid, 1) for pid in range(2000)]
    assert not any(_fails(0.0, pid, 1) for pid in range(100))
    assert all(_fails(1.0, pid, 2) for pid in range(100))


def test_failure_message_names_client_and_round() -> None:
    with pytest.raises(SimulatedClientFailure, match="partition 7 failed in round 3"):
        inject_faults(FaultConfig(failure_rate=1.0), seed=0, partition_id=7, server_round=3)


def test_stragglers_sleep_before_answering() -> None:
    import time

    faults = FaultConfig(straggler_rate=1.0, straggler_seconds=0.2)
    t0 = time.perf_counter()
    inject_faults(faults, seed=1, partition_id=0, server_round=1)
    assert time.perf_counter() - t0 >= 0.2
    t0 = time.perf_counter()
    inject_faults(
        FaultConfig(straggler_rate=0.0, straggler_seconds=5.0),
        seed=1,
        partition_id=0,
        server_round=1,
    )
    assert time.perf_counter() - t0 < 1.0


def test_fault_settings_are_the_simulations_not_the_apps() -> None:
    # Prepare
    settings = {"num-rounds": 2, "failure-rate": 0.4, "straggler_seconds": 3.0}
    # Execute
    rest, faults = split_faults(settings)
    # Assert: the app's config never sees them; a deployed client has no fault path.
    assert rest == {"num-rounds": 2}
    assert faults == FaultConfig(failure_rate=0.4, straggler_seconds=3.0) and faults.active
    assert not split_faults({})[1].active
    with pytest.raises(ConfigError, match="unknown config key.*failure-rate"):
        resolve_config({}, {"failure-rate": 0.4})


@pytest.mark.parametrize(
    ("key", "value"), [("failure-rate", 1.5), ("straggler-rate", -0.1), ("straggler-seconds", -1)]
)
def test_bad_fault_settings_say_why(key: str, value: float) -> None:
    with pytest.raises(ConfigError, match=key):
        split_faults({key: value})
