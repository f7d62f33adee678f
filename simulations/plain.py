"""The same federated training without Flower: a plain loop in one process.

This is the baseline of the framework-overhead benchmark (Flower round time divided by the
time of exactly this loop over the same clients and settings), and a quick way to try
settings. It calls the very functions a ClientApp and the strategy call -- client data
view, local (DP) training, private state on disk, screening, combining, server optimizer --
only the messaging, serialization and actor scheduling are left out.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fedrec.client.state import ClientStateStore
from fedrec.client.task import client_seed, load_client_data, local_train, local_user_evals
from fedrec.server.aggregation import ServerOptimizer, apply_updates, server_optimizer_for
from fedrec.shared.config import FedRecConfig
from fedrec.shared.errors import ConfigError
from fedrec.shared.evaluation import summarize


@dataclass
class PlainFederation:
    """Global shared tensors + client states under ``state_root``, advanced round by round."""

    cfg: FedRecConfig
    num_partitions: int
    shared: dict[str, np.ndarray]
    state_root: Path
    device: torch.device = torch.device("cpu")  # noqa: B008 - immutable default
    optimizer: ServerOptimizer | None = None

    def __post_init__(self) -> None:
        if self.cfg.privacy.user_dp != "off":
            # Silently training without the noise asked for would be worse than refusing.
            raise ConfigError(
                f"the plain loop does not apply user-level DP (user-dp="
                f"{self.cfg.privacy.user_dp}); run it with Flower (fedrec simulate)"
            )
        self.optimizer = self.optimizer or server_optimizer_for(self.cfg.federation)

    def _store(self, pid: int) -> ClientStateStore:
        return ClientStateStore(self.state_root / f"partition-{pid}")

    def train_round(self, partitions: Sequence[int], server_round: int) -> float:
        """Train ``partitions`` on the current model and aggregate; returns seconds taken."""
        t0 = time.perf_counter()
        deltas = []
        for pid in partitions:
            data = load_client_data(self.cfg, pid, self.num_partitions)
            update, _ = local_train(
                self.cfg,
                data,
                self.shared,
                self._store(pid),
                server_round=server_round,
                seed=client_seed(self.cfg, pid),
                device=self.device,
            )
            deltas.append({k: update[k] - v for k, v in self.shared.items()})
        fed = self.cfg.federation
        assert self.optimizer is not None
        new, _, _ = apply_updates(
            self.shared,
            deltas,
            self.optimizer,
            aggregation=fed.aggregation,
            trim_fraction=fed.trim_fraction,
            norm_factor=fed.update_norm_factor,
        )
        if new is not None:
            self.shared = new
        return time.perf_counter() - t0

    def evaluate(self, *, k: int = 10) -> dict[str, float]:
        """Every client's personalised ranking of its test item, pooled (as evaluate_run)."""
        evals = []
        n_items = 0
        for pid in range(self.num_partitions):
            data = load_client_data(self.cfg, pid, self.num_partitions)
            n_items = data.n_items
            evals += local_user_evals(
                self.cfg,
                data,
                self.shared,
                self._store(pid).load(),
                k=k,
                personalize_epochs=self.cfg.federation.personalize_epochs,
                seed=client_seed(self.cfg, pid),
            )
        return summarize(evals, k=k, n_items=n_items)


def sample_partitions(num_partitions: int, fraction: float, *, seed: int, rnd: int) -> list[int]:
    """A seeded sample of ``fraction`` of the partitions (at least one)."""
    n = max(1, int(num_partitions * fraction + 1e-9))
    rng = np.random.default_rng([seed, rnd])
    return sorted(rng.choice(num_partitions, n, replace=False).tolist())
