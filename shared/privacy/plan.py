"""The public shape of record-level DP-SGD: steps per epoch, the Poisson rate, a round's plan.

Every client runs ``steps_per_epoch`` steps per epoch (``round(1 / dp-sample-rate)``) at
rate ``1 / steps_per_epoch``, so the step count and the accounted ε do not depend on the
client's data. Plain arithmetic on the settings: the server, the ledgers and the reports
read it without importing the training machinery (:mod:`fedrec.shared.privacy.record`).
"""

from __future__ import annotations

from fedrec.shared.config import PrivacyConfig, TrainConfig
from fedrec.shared.privacy.accounting import HistoryEntry


def steps_per_epoch(privacy: PrivacyConfig) -> int:
    """DP steps per local epoch: ``round(1 / dp-sample-rate)``, the same for every client."""
    return max(1, round(1.0 / privacy.dp_sample_rate))


def sample_rate(privacy: PrivacyConfig) -> float:
    """The Poisson rate each record is sampled with in a step (1.0: full batch)."""
    return 1.0 / steps_per_epoch(privacy)


def dp_plan(train: TrainConfig, privacy: PrivacyConfig) -> HistoryEntry:
    """The ``(noise_multiplier, sample_rate, steps)`` one round of local DP-SGD runs.

    It depends on public settings only, never on the client's data.
    """
    return (
        privacy.dp_noise_multiplier,
        sample_rate(privacy),
        train.local_epochs * steps_per_epoch(privacy),
    )
