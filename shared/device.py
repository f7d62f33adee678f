"""Device choice: CUDA when present, else CPU; overridable."""

from __future__ import annotations

import torch

from fedrec.shared.errors import ConfigError


def resolve_device(preference: str = "auto") -> torch.device:
    """``auto`` picks CUDA when available; ``cpu``/``cuda``/``cuda:N`` are taken as given."""
    if preference == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if preference.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {preference!r} requested but CUDA is not available")
    try:
        return torch.device(preference)
    except RuntimeError:
        raise ConfigError(f"unknown device {preference!r}; use auto, cpu or cuda[:N]") from None
