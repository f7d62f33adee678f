import pytest

from fedrec.shared.config import resolve_config
from fedrec.shared.errors import ConfigError
from fedrec.simulation.scenarios import load_scenario, parse_override, scenario_names


def test_every_shipped_scenario_is_a_valid_config() -> None:
    names = scenario_names()
    assert {"smoke", "ml100k-dp", "ml100k-nodp"} <= set(names)
    for name in names:
        resolve_config({}, load_scenario(name))


def test_override_values_are_typed() -> None:
    assert parse_override("num-rounds=3") == ("num-rounds", 3)
    assert parse_override("dp-enabled=false") == ("dp-enabled", False)
    assert parse_override("run-name=abc") == ("run-name", "abc")
    assert parse_override("data-path=/x/y.csv") == ("data-path", "/x/y.csv")


def test_override_without_equals_is_refused() -> None:
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_override("num-rounds")
