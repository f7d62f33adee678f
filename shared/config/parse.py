"""Flower's flat run config <-> :class:`~fedrec.shared.config.settings.FedRecConfig`.

Keys are the dataclass fields with ``-`` for ``_``; an unknown key is an error (usually a
typo), a deprecated key is read as its new name with a warning that names it, a key renamed
longer ago is refused with its new name, and a checkpoint written by an earlier version is
read with its retired and renamed keys translated.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from fedrec.shared.config.settings import FedRecConfig
from fedrec.shared.errors import ConfigError


def _coerce(value: Any, target: type, key: str) -> Any:
    if target is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
            return value.lower() in ("true", "1")
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ConfigError(f"{key} must be true or false, got {value!r}")
    if target is int:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ConfigError(f"{key} must be an integer, got {value!r}")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key} must be an integer, got {value!r}") from None
    if target is float:
        if isinstance(value, bool):
            raise ConfigError(f"{key} must be a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key} must be a number, got {value!r}") from None
    return str(value)


_TYPES = {"int": int, "float": float, "bool": bool, "str": str}


# Old name -> new name. A run config with an old name is refused with the new one: silently
# accepting both would leave two spellings of one setting in scenario files and manifests.
RENAMED_KEYS = {"accountant": "user-accountant"}

# Old name -> new name of the record-level keys that took the level's prefix (``dp-*``, as
# ``user-*`` is the user level's). Still read, with a warning, so that scenario files and
# scripts keep working until they are updated; a later version refuses them (RENAMED_KEYS).
DEPRECATED_KEYS = {
    "noise-multiplier": "dp-noise-multiplier",
    "max-grad-norm": "dp-max-grad-norm",
    "target-delta": "dp-delta",
    "epsilon-budget": "dp-epsilon-budget",
    "grad-sample-mode": "dp-grad-sample-mode",
}


class DeprecatedKeyWarning(FutureWarning):
    """A run config used a key's old name (read as the new one)."""


def current_names(run_config: Mapping[str, Any], *, warn: bool = True) -> dict[str, Any]:
    """``run_config`` with every deprecated key under its new name (a warning for each).

    A run config that holds both names keeps the old one's value where the new one still
    has its default (Flower's run config is the defaults with the user's keys on top);
    two different values set on purpose are refused.
    """
    out = dict(run_config)
    defaults = FedRecConfig().to_run_config()
    for old, new in DEPRECATED_KEYS.items():
        if old not in out:
            continue
        value = out.pop(old)
        if warn:
            warnings.warn(
                f"config key {old!r} is deprecated: write {new!r} (record-level keys are "
                f"dp-*; a later version will refuse {old!r})",
                DeprecatedKeyWarning,
                stacklevel=3,
            )
        if new in out and out[new] != defaults[new] and out[new] != value:
            raise ConfigError(
                f"{old} (deprecated) and {new} are set to different values; set {new} only"
            )
        out[new] = value
    return out


def from_run_config(run_config: Mapping[str, Any]) -> FedRecConfig:
    """Parse Flower's flat run config; unknown keys are an error (they are usually typos)."""
    run_config = current_names(run_config)
    renamed = sorted(k for k in run_config if k in RENAMED_KEYS)
    if renamed:
        raise ConfigError(
            "renamed config key(s): " + ", ".join(f"{k} is now {RENAMED_KEYS[k]}" for k in renamed)
        )
    remaining = dict(run_config)
    sections: dict[str, Any] = {}
    for section in fields(FedRecConfig):
        cls: Any = section.default_factory
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            key = f.name.replace("_", "-")
            if key in remaining:
                kwargs[f.name] = _coerce(remaining.pop(key), _TYPES[str(f.type)], key)
        sections[section.name] = cls(**kwargs)
    if remaining:
        known = sorted(FedRecConfig().to_run_config())
        raise ConfigError(
            f"unknown config key(s) {sorted(remaining)}; known keys: {', '.join(known)}"
        )
    return FedRecConfig(**sections)


# Implementation details: the "Advanced" group of [tool.flwr.app.config] and of
# docs/configuration.md, whose defaults suit every run we know of.
ADVANCED_KEYS = frozenset(
    {
        "min-train-nodes",
        "min-available-nodes",
        "final-evaluate-all",
        "max-in-flight",
        "server-beta2",
        "server-tau",
        "dense-server-learning-rate",
        "dp-grad-sample-mode",
        "reproducible-noise",
        "secagg-num-shares",
        "secagg-reconstruction-threshold",
        "text-max-length",
        "text-cache-dir",
    }
)

# Keys that earlier versions wrote into checkpoints and that no run config takes any more:
# reading a checkpoint skips them (a run config that sets one is an error, as any unknown key).
RETIRED_KEYS = frozenset({"failure-rate", "straggler-rate", "straggler-seconds"})


def config_of_checkpoint(saved: Mapping[str, Any]) -> FedRecConfig:
    """The settings a checkpoint's manifest recorded, read by this version of fedrec."""
    current = {RENAMED_KEYS.get(k, k): v for k, v in saved.items() if k not in RETIRED_KEYS}
    return from_run_config(current_names(current, warn=False))


def resolve_config(
    run_config: Mapping[str, Any] | None, overrides: Mapping[str, Any] | None = None
) -> FedRecConfig:
    """Defaults, then Flower's run config, then programmatic overrides (last wins)."""
    flat = FedRecConfig().to_run_config()
    flat.update(current_names(run_config or {}))
    flat.update(current_names({k.replace("_", "-"): v for k, v in (overrides or {}).items()}))
    return from_run_config(flat)


def default_config() -> FedRecConfig:
    """The defaults (equal to ``[tool.flwr.app.config]`` in ``pyproject.toml``)."""
    return FedRecConfig()
