"""The one way a config section refuses a value: a :class:`ConfigError` saying why."""

from __future__ import annotations

from fedrec.shared.errors import ConfigError


def check(condition: bool, message: str) -> None:
    """Raise :class:`ConfigError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise ConfigError(message)
