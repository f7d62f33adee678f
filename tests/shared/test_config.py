import tomllib
from pathlib import Path

import pytest

from fedrec.shared.config import FedRecConfig, from_run_config, resolve_config
from fedrec.shared.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_pyproject_flower_config_equals_typed_defaults() -> None:
    flower = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["flwr"]["app"]["config"]
    assert from_run_config(flower) == FedRecConfig()
    assert set(flower) == set(FedRecConfig().to_run_config())


def test_round_trip_and_overrides() -> None:
    cfg = resolve_config({"num-rounds": 3}, {"dp_enabled": False, "embedding-dim": "16"})
    assert cfg.federation.num_rounds == 3
    assert cfg.privacy.dp_enabled is False
    assert cfg.train.embedding_dim == 16
    assert from_run_config(cfg.to_run_config()) == cfg


@pytest.mark.parametrize(
    ("key", "value", "needle"),
    [
        ("fraction-train", 0.0, "fraction-train"),
        ("fraction-train", 1.5, "fraction-train"),
        ("embedding-dim", 2.5, "integer"),
        ("dp-enabled", "maybe", "true or false"),
        ("dataset", "netflix", "dataset must be one of"),
        ("target-delta", 1.0, "target-delta"),
        ("run-name", "a/b", "run-name"),
        ("strategy", "fedsgd", "strategy must be one of"),
        ("aggregation", "mode", "aggregation must be one of"),
        ("trim-fraction", 0.5, "trim-fraction"),
        ("lr-decay", 0.0, "lr-decay"),
        ("failure-rate", 1.5, "failure-rate"),
    ],
)
def test_bad_values_say_why(key: str, value: object, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        resolve_config({}, {key: value})


def test_unknown_key_is_an_error_listing_known_keys() -> None:
    with pytest.raises(ConfigError, match="unknown config key.*num-round"):
        resolve_config({"num-round": 3})


def test_dp_needs_noise() -> None:
    with pytest.raises(ConfigError, match="noise-multiplier"):
        resolve_config({}, {"dp-enabled": True, "noise-multiplier": 0.0})
