"""The run's settings as one frozen dataclass of sections, each validating itself.

One module per section (:mod:`.data`, :mod:`.train`, :mod:`.privacy`, :mod:`.federation`,
:mod:`.text`, :mod:`.cooccurrence`); this one joins them into :class:`FedRecConfig` and
holds the outputs section. Parsing Flower's flat run config into them is
:mod:`fedrec.shared.config.parse`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from fedrec.shared.config.cooccurrence import COOCCURRENCE_ITEM_MODELS, CooccurrenceConfig
from fedrec.shared.config.data import DATA_SOURCES, DATASETS, DataConfig
from fedrec.shared.config.federation import (
    ADAPTIVE_SERVER_LEARNING_RATE,
    AGGREGATIONS,
    FEDAVG_SERVER_LEARNING_RATE,
    FEDERATED_EVALUATION,
    STRATEGIES,
    FederationConfig,
    default_server_learning_rate,
)
from fedrec.shared.config.privacy import ACCOUNTANTS, USER_DP_PLACEMENTS, PrivacyConfig
from fedrec.shared.config.text import TEXT_TOWERS, TextConfig
from fedrec.shared.config.train import MODELS, TrainConfig
from fedrec.shared.config.validate import check

__all__ = [
    "ACCOUNTANTS",
    "ADAPTIVE_SERVER_LEARNING_RATE",
    "AGGREGATIONS",
    "COOCCURRENCE_ITEM_MODELS",
    "DATASETS",
    "DATA_SOURCES",
    "FEDAVG_SERVER_LEARNING_RATE",
    "FEDERATED_EVALUATION",
    "MODELS",
    "STRATEGIES",
    "TEXT_TOWERS",
    "USER_DP_PLACEMENTS",
    "CooccurrenceConfig",
    "DataConfig",
    "FedRecConfig",
    "FederationConfig",
    "OutputConfig",
    "PrivacyConfig",
    "TextConfig",
    "TrainConfig",
    "default_server_learning_rate",
]


@dataclass(frozen=True)
class OutputConfig:
    """Where checkpoints and client state go, and whether to resume."""

    output_dir: str = "runs"
    run_name: str = "ml100k-default"
    resume: bool = True

    def __post_init__(self) -> None:
        check(bool(self.run_name.strip()), "run-name must not be empty")
        check("/" not in self.run_name, "run-name must not contain '/'")


@dataclass(frozen=True)
class FedRecConfig:
    """Every setting of a run."""

    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    federation: FederationConfig = field(default_factory=FederationConfig)
    text: TextConfig = field(default_factory=TextConfig)
    cooccurrence: CooccurrenceConfig = field(default_factory=CooccurrenceConfig)
    output: OutputConfig = field(default_factory=OutputConfig)

    def __post_init__(self) -> None:
        # The noise of central and secagg user-level DP is calibrated to the sum of clipped
        # updates: a trimmed mean or median of them has no such bound (and under SecAgg+ the
        # server never sees single updates to rank).
        check(
            self.privacy.user_dp not in ("central", "secagg")
            or self.federation.aggregation == "mean",
            f"user-dp={self.privacy.user_dp} needs aggregation=mean, got "
            f"{self.federation.aggregation!r}",
        )

    @property
    def any_dp(self) -> bool:
        """Whether any DP guarantee (record or user level) is claimed for this run."""
        return self.privacy.dp_enabled or self.privacy.user_dp != "off"

    @property
    def federated_evaluation(self) -> bool:
        """Whether clients evaluate and send metrics (see ``federated-evaluation``)."""
        setting = self.federation.federated_evaluation
        return setting == "on" or (setting == "auto" and not self.any_dp)

    def to_run_config(self) -> dict[str, Any]:
        """The flat hyphenated mapping Flower uses (inverse of :func:`from_run_config`)."""
        flat: dict[str, Any] = {}
        for section in fields(self):
            part = getattr(self, section.name)
            for f in fields(part):
                flat[f.name.replace("_", "-")] = getattr(part, f.name)
        return flat

    def replace(self, **overrides: Any) -> FedRecConfig:
        """A copy with some flat hyphenated (or underscored) keys changed."""
        from fedrec.shared.config.parse import current_names, from_run_config

        flat = self.to_run_config()
        flat.update(current_names({k.replace("_", "-"): v for k, v in overrides.items()}))
        return from_run_config(flat)
