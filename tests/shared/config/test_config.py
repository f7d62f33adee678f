import tomllib
import warnings
from pathlib import Path

import pytest

from fedrec.shared.config import (
    ADVANCED_KEYS,
    DEPRECATED_KEYS,
    DeprecatedKeyWarning,
    FedRecConfig,
    config_of_checkpoint,
    from_run_config,
    resolve_config,
)
from fedrec.shared.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]


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
        ("dp-delta", 1.0, "dp-delta"),
        ("run-name", "a/b", "run-name"),
        ("strategy", "fedsgd", "strategy must be one of"),
        ("aggregation", "mode", "aggregation must be one of"),
        ("trim-fraction", 0.5, "trim-fraction"),
        ("lr-decay", 0.0, "lr-decay"),
    ],
)
def test_bad_values_say_why(key: str, value: object, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        resolve_config({}, {key: value})


def test_unknown_key_is_an_error_listing_known_keys() -> None:
    with pytest.raises(ConfigError, match="unknown config key.*num-round"):
        resolve_config({"num-round": 3})


def test_dp_needs_noise() -> None:
    with pytest.raises(ConfigError, match="dp-noise-multiplier"):
        resolve_config({}, {"dp-enabled": True, "dp-noise-multiplier": 0.0})


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [("fedavg", 100.0), ("fedavgm", 10.0), ("fedadam", 0.01), ("fedyogi", 0.01)],
)
def test_each_strategy_has_its_own_server_learning_rate_default(
    strategy: str, expected: float
) -> None:
    # Regression: FedAdam and FedYogi silently used FedAvg's rate of 100.
    cfg = resolve_config({}, {"strategy": strategy})
    assert cfg.federation.server_lr == pytest.approx(expected)
    explicit = resolve_config({}, {"strategy": strategy, "server-learning-rate": 3.0})
    assert explicit.federation.server_lr == 3.0


def test_the_server_optimizer_uses_the_strategys_default_rate() -> None:
    from fedrec.server.aggregation import server_optimizer_for

    cfg = resolve_config({}, {"strategy": "fedadam"})
    assert server_optimizer_for(cfg.federation).lr == pytest.approx(0.01)  # type: ignore[attr-defined]
    fedavgm = resolve_config({}, {"strategy": "fedavgm", "server-momentum": 0.5})
    assert fedavgm.federation.server_lr == pytest.approx(50.0)


def test_shared_never_imports_the_server_or_the_client() -> None:
    import subprocess
    import sys

    code = (
        "import sys, fedrec.shared.config, fedrec.shared.privacy, fedrec.shared.evaluation; "
        "bad = [m for m in sys.modules if m.startswith(('fedrec.server', 'fedrec.client'))]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_checkpoint_written_before_the_faults_left_the_config_still_reads() -> None:
    # Prepare: a manifest's config from a version that had the fault keys.
    saved = {**FedRecConfig().to_run_config(), "failure-rate": 0.0, "straggler-rate": 0.0}
    # Execute / Assert
    assert config_of_checkpoint(saved) == FedRecConfig()


def test_a_renamed_key_is_refused_with_its_new_name_and_old_checkpoints_still_read() -> None:
    # Prepare / Execute / Assert: a run config with the old name says what to write instead.
    with pytest.raises(ConfigError, match="accountant is now user-accountant"):
        resolve_config({}, {"accountant": "prv"})
    # A checkpoint written before the rename reads as the same settings.
    saved = {**FedRecConfig().to_run_config(), "accountant": "prv"}
    del saved["user-accountant"]
    assert config_of_checkpoint(saved).privacy.user_accountant == "prv"


@pytest.mark.parametrize(("old", "new"), sorted(DEPRECATED_KEYS.items()))
def test_a_deprecated_key_is_read_as_its_new_name_with_a_warning_naming_it(
    old: str, new: str
) -> None:
    # Prepare: a value other than the default, under the old name.
    value = {"dp-grad-sample-mode": "hooks"}.get(new, 0.5)
    field = new.replace("-", "_")
    # Execute / Assert: as an override and inside Flower's run config (defaults + user keys).
    with pytest.warns(DeprecatedKeyWarning, match=f"'{old}' is deprecated: write '{new}'"):
        cfg = resolve_config({}, {old: value})
    assert getattr(cfg.privacy, field) == value
    flower = {**FedRecConfig().to_run_config(), old: value}
    with pytest.warns(DeprecatedKeyWarning):
        assert getattr(from_run_config(flower).privacy, field) == value


def test_an_old_and_a_new_name_with_different_values_are_refused() -> None:
    with pytest.warns(DeprecatedKeyWarning), pytest.raises(ConfigError, match="set dp-delta only"):
        resolve_config({"target-delta": 1e-6, "dp-delta": 1e-4})


def test_a_checkpoint_with_the_old_record_level_names_reads_without_a_warning() -> None:
    # Prepare: a manifest's config written before the dp-* names.
    saved = FedRecConfig().to_run_config()
    saved["noise-multiplier"] = saved.pop("dp-noise-multiplier") * 2
    saved["target-delta"] = saved.pop("dp-delta")
    # Execute
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cfg = config_of_checkpoint(saved)
    # Assert
    assert cfg.privacy.dp_noise_multiplier == 2 * FedRecConfig().privacy.dp_noise_multiplier
    assert cfg.privacy.dp_delta == FedRecConfig().privacy.dp_delta


def test_the_advanced_keys_come_last_in_pyproject_and_every_key_is_documented() -> None:
    # Prepare
    text = (ROOT / "pyproject.toml").read_text()
    table = text[text.index("[tool.flwr.app.config]") :].split("\n[", 1)[0]
    head, advanced = table.split("# ---- Advanced", 1)
    docs = (ROOT / "docs" / "configuration.md").read_text()
    docs_advanced = docs[docs.index("## Advanced") :]
    keys = FedRecConfig().to_run_config()
    # Assert
    for name in keys:
        in_advanced = f"\n{name} = " in advanced
        assert in_advanced == (name in ADVANCED_KEYS), name
        assert in_advanced or f"\n{name} = " in head, name
        assert f"| `{name}` |" in docs, name
        assert (f"| `{name}` |" in docs_advanced) == (name in ADVANCED_KEYS), name
