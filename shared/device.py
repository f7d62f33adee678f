"""Device choice: CUDA when present, else CPU; overridable."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from fedrec.shared.errors import ConfigError, NodeConfigError

# torch is imported where a device is made: the server only reads device codes.
if TYPE_CHECKING:
    import torch


def resolve_device(preference: str = "auto") -> torch.device:
    """``auto`` picks CUDA when available; ``cpu``/``cuda``/``cuda:N`` are taken as given."""
    import torch

    if preference == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(preference)
    except RuntimeError:
        raise ConfigError(f"unknown device {preference!r}; use auto, cpu or cuda[:N]") from None
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"unknown device {preference!r}; use auto, cpu or cuda[:N]")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {preference!r} requested but CUDA is not available")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ConfigError(
                f"device {preference!r} requested but this machine has {count} CUDA device(s)"
            )
    return device


def node_device(node_config: Mapping[str, object]) -> torch.device:
    """The device a SuperNode's ``--node-config`` asks for (``device``, default ``auto``)."""
    preference = str(node_config.get("device", "auto"))
    try:
        return resolve_device(preference)
    except ConfigError as err:
        raise NodeConfigError(
            f"node config device={preference!r}: {err}; restart the SuperNode with "
            "device='auto' or 'cpu' in --node-config"
        ) from None


def device_code(device: torch.device) -> float:
    """How a client reports its device in its reply: the CUDA index, ``-1`` for the CPU."""
    if device.type != "cuda":
        return -1.0
    import torch

    return float(device.index if device.index is not None else torch.cuda.current_device())


def device_label(code: float) -> str:
    """``cpu`` or ``cuda:N`` from :func:`device_code`'s number."""
    return "cpu" if code < 0 else f"cuda:{int(code)}"
