"""What the server's messages tell the clients: the train and evaluate config records.

Each round's messages say which run and which server process asks, and where it resumed,
so a client finds its own per-run state and rolls back a round the server lost
(:mod:`fedrec.client.state`); the client reads them in :mod:`fedrec.client.message_config`.
Whether a round is followed by federated evaluation at all is decided here too.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flwr.app import ConfigRecord

from fedrec.shared import protocol as key
from fedrec.shared.config import FedRecConfig

logger = logging.getLogger(__name__)

EVAL_K = 10  # the cut-off of federated evaluation's ranking metrics


@dataclass(frozen=True)
class Asker:
    """Who asks: the run, its catalogue's version, this server process, where it resumed."""

    run_id: str
    catalog_sha256: str
    resumed_from: int
    incarnation: str
    committed: list[str]  # "token:first:last" of every process that checkpointed rounds

    def train_config(self, user_level: Mapping[str, Any]) -> ConfigRecord:
        """A train message's config; ``user_level``: user-dp and the run's δ, for ledgers."""
        return ConfigRecord(
            {
                key.RUN_ID: self.run_id,
                key.CATALOG_SHA256: self.catalog_sha256,
                key.RESUMED_FROM: self.resumed_from,
                key.SERVER_INCARNATION: self.incarnation,
                key.COMMITTED_INCARNATIONS: self.committed or [""],
                **user_level,
            }
        )

    def evaluate_config(self, *, personalize_epochs: int) -> ConfigRecord:
        """An evaluate message's config: the cut-off, fine-tuning epochs, run and catalogue."""
        return ConfigRecord(
            {
                key.EVAL_K: EVAL_K,
                key.PERSONALIZE_EPOCHS: personalize_epochs,
                key.RUN_ID: self.run_id,
                key.CATALOG_SHA256: self.catalog_sha256,
            }
        )


def federated_evaluation(cfg: FedRecConfig) -> bool:
    """Whether rounds are followed by federated evaluation (says why not, under DP)."""
    evaluate = cfg.federated_evaluation
    if not evaluate and cfg.any_dp and cfg.federation.federated_evaluation == "auto":
        logger.info(
            "federated evaluation is off under DP: its metrics would be computed from the "
            "clients' records without noise, which no guarantee covers "
            "(federated-evaluation=on runs it anyway; `fedrec evaluate` measures a "
            "simulation's checkpoints)"
        )
    return evaluate
