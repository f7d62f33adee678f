"""The same federated training without Flower: a plain loop in one process.

This is the baseline of the framework-overhead benchmark (Flower round time divided by the
time of exactly this loop over the same clients and settings), and a quick way to try
settings. It calls the very functions a ClientApp and the strategy call -- client data
view, local (DP) training, private state on disk, screening, combining, server optimizer --
only the messaging, serialization and actor scheduling are left out.

User-level DP: the ``central`` placement runs here with the server-side functions the Flower
strategy uses (:class:`fedrec.server.user_dp.CentralNoise` clips every update and noises
their sum once; the sum is divided by the number of clients sampled; the run's user-level
(ε, δ) is kept by :class:`fedrec.server.user_dp.UserLevelAccountant`). ``local`` and
``secagg`` involve the clients' ledgers and Flower's SecAgg+ and are refused: run them with
Flower (``fedrec simulate``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from fedrec.client.state import ClientStateStore
from fedrec.client.task import client_seed, load_client_data, local_train, local_user_evals
from fedrec.server.aggregation import (
    ServerOptimizer,
    apply_updates,
    server_optimizer_for,
    update_norm,
)
from fedrec.server.user_dp import CentralNoise, UserLevelAccountant, mean_of_sum
from fedrec.shared.config import FedRecConfig
from fedrec.shared.errors import ConfigError
from fedrec.shared.evaluation import UserEval, summarize


@dataclass
class PlainFederation:
    """Global shared tensors + client states under ``state_root``, advanced round by round."""

    cfg: FedRecConfig
    num_partitions: int
    shared: dict[str, np.ndarray]
    state_root: Path
    device: torch.device = torch.device("cpu")  # noqa: B008 - immutable default
    optimizer: ServerOptimizer | None = None
    # user-dp=central: the server's clip-and-noise and the run's user-level account.
    central_noise: CentralNoise | None = None
    user_accountant: UserLevelAccountant | None = None
    # The L2 norms of the last round's raw client updates (a simulation diagnostic: under
    # user-dp=central the server sees them but does not publish them).
    last_norms: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        privacy = self.cfg.privacy
        if privacy.user_dp not in ("off", "central"):
            # Silently training without the noise asked for would be worse than refusing.
            raise ConfigError(
                f"the plain loop does not apply user-level DP in the {privacy.user_dp} "
                "placement (only user-dp=central); run it with Flower (fedrec simulate)"
            )
        if privacy.user_dp == "central":
            self.central_noise = self.central_noise or CentralNoise(
                privacy.user_clip, privacy.user_noise_multiplier
            )
            self.user_accountant = self.user_accountant or UserLevelAccountant(privacy)
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
        if self.central_noise is not None and deltas:
            # As FedRecStrategy.aggregate_train under user-dp=central: clip each update, sum,
            # noise the sum once, divide by the number of clients sampled, no screening.
            assert self.user_accountant is not None
            self.last_norms = [update_norm(d) for d in deltas]
            total = self.central_noise.noised_sum(deltas)
            self.shared = self.optimizer.step(self.shared, mean_of_sum(total, len(partitions)))
            self.user_accountant.fix_delta(self.num_partitions)
            self.user_accountant.record_round(
                sampled=len(partitions), available=self.num_partitions
            )
            return time.perf_counter() - t0
        new, _, norms = apply_updates(
            self.shared,
            deltas,
            self.optimizer,
            aggregation=fed.aggregation,
            trim_fraction=fed.trim_fraction,
            norm_factor=fed.update_norm_factor,
        )
        self.last_norms = [float(x) for x in norms]
        if new is not None:
            self.shared = new
        return time.perf_counter() - t0

    def user_privacy(self) -> dict[str, object] | None:
        """The user-level report (as in a Flower run's manifest); ``None`` when it is off."""
        if self.user_accountant is None or self.user_accountant.delta is None:
            return None
        return self.user_accountant.report()

    def evaluate(self, *, k: int = 10) -> dict[str, float]:
        """Every client's personalised ranking of its test item, pooled (as evaluate_run)."""
        evals, n_items = self.user_evals(k=k)
        return summarize(evals, k=k, n_items=n_items)

    def user_evals(self, *, k: int = 10) -> tuple[list[UserEval], int]:
        """Each user's evaluation (as :meth:`evaluate` pools them), and the catalogue size."""
        evals: list[UserEval] = []
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
        return evals, n_items


def sample_partitions(num_partitions: int, fraction: float, *, seed: int, rnd: int) -> list[int]:
    """A seeded sample of ``fraction`` of the partitions (at least one)."""
    n = max(1, int(num_partitions * fraction + 1e-9))
    rng = np.random.default_rng([seed, rnd])
    return sorted(rng.choice(num_partitions, n, replace=False).tolist())
