"""Scenario files: flat TOML tables of run settings, shipped in ``simulations/scenarios``."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from fedrec.shared.errors import ConfigError


def scenario_names() -> list[str]:
    """Names of the scenarios that ship with fedrec."""
    folder = resources.files("fedrec.simulations") / "scenarios"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def load_scenario(name_or_path: str) -> dict[str, Any]:
    """A shipped scenario by name, or any TOML file by path."""
    path = Path(name_or_path)
    if path.suffix == ".toml" and path.exists():
        text = path.read_text()
    else:
        res = resources.files("fedrec.simulations") / "scenarios" / f"{name_or_path}.toml"
        if not res.is_file():
            raise ConfigError(
                f"no scenario {name_or_path!r}; shipped: {', '.join(scenario_names())} "
                "(or give a path to a .toml file)"
            )
        text = res.read_text()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"scenario {name_or_path}: {err}") from None
    return data


def parse_override(item: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with VALUE read as TOML (``3``, ``0.1``, ``true``) or else as a string."""
    if "=" not in item:
        raise ConfigError(f"expected KEY=VALUE, got {item!r}")
    key, raw = item.split("=", 1)
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key.strip(), value
