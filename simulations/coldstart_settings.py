"""The cold-start benchmark's training settings, and the check of its repeats.

Apart from the driver so the CLI can refuse bad options before the driver's slow imports.
"""

from __future__ import annotations

from typing import Any

from fedrec.shared.config import resolve_config

TRAIN_SETTINGS: dict[str, Any] = {
    "dp-enabled": False,
    "fraction-train": 1.0,
    "local-epochs": 2,
    "client-optimizer": "adam",
    "learning-rate": 0.01,
    "server-learning-rate": 100.0,
}


def check_repeats(overrides: dict[str, Any] | None, repeats: int) -> bool:
    """Whether repeated runs draw fresh DP noise (else each repeat takes the next seed).

    A repeat with the same seed and no fresh noise would be the same run again, so a run
    with DP but reproducible (seeded) noise cannot be repeated.
    """
    cfg = resolve_config({}, {**TRAIN_SETTINGS, **(overrides or {})})
    dp = cfg.privacy.dp_enabled or cfg.privacy.user_dp != "off"
    if repeats > 1 and dp and cfg.privacy.reproducible_noise:
        raise ValueError(
            "--repeats > 1 with reproducible-noise=true would repeat the same noise: "
            "drop reproducible-noise, or vary -c seed=N"
        )
    return dp and not cfg.privacy.reproducible_noise
