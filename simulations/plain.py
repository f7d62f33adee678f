"""The same federated training without Flower: a plain loop in one process.

This is the baseline of the framework-overhead benchmark (Flower round time divided by the
time of exactly this loop over the same clients and settings), and a quick way to try
settings. It calls the very functions a ClientApp and the strategy call -- client data
view, local (DP) training, private state on disk, screening, combining, server optimizer --
only the messaging, serialization and actor scheduling are left out.

User-level DP, every placement, with the functions the Flower apps use; the run's
user-level (ε, δ) is kept by :class:`fedrec.server.user_dp.UserLevelAccountant`:

- ``central``: :class:`fedrec.server.user_dp.CentralNoise` clips every update and noises
  their sum once; the sum is divided by the number of clients sampled.
- ``local``: each client clips its update and adds all of the noise (the ClientApp's
  :func:`fedrec.client.task.noised_update`), keeps its ledger
  (:func:`fedrec.shared.privacy.user_round_for`), and the server averages what it gets as
  without DP.
- ``secagg``: each client adds its share of the noise for the threshold Flower's SecAgg+
  workflow would set (:func:`fedrec.server.secagg.secagg_threshold`); the sum is computed
  with SecAgg+'s own arithmetic -- Flower's stochastic quantization of every vector, an
  integer sum, dequantization -- but without the pairwise and private masks, which cancel
  exactly in that integer sum. The protocol itself (keys, shares, dropouts) runs only under
  Flower (``fedrec simulate``; tests/server/test_secagg.py).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from flwr.common.secure_aggregation.quantization import dequantize, quantize

from fedrec.client.state import ClientStateStore
from fedrec.client.task import (
    client_seed,
    load_client_data,
    local_train,
    local_user_evals,
    noised_update,
)
from fedrec.server.aggregation import (
    ServerOptimizer,
    apply_updates,
    server_optimizer_for,
    update_norm,
)
from fedrec.server.secagg import clipping_range, quantization_levels, secagg_threshold
from fedrec.server.user_dp import (
    CentralNoise,
    UserLevelAccountant,
    central_noise_for,
    mean_of_sum,
)
from fedrec.shared.config import FedRecConfig, PrivacyConfig
from fedrec.shared.evaluation import UserEval, summarize
from fedrec.shared.privacy import user_round_for

Arrays = dict[str, np.ndarray]


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
    # The L2 norms of the last round's raw client updates (a simulation diagnostic: with
    # user-level DP nobody publishes them; under local/secagg the server never sees them).
    last_norms: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        privacy = self.cfg.privacy
        if privacy.user_dp == "central":
            self.central_noise = self.central_noise or central_noise_for(self.cfg)
        if privacy.user_dp != "off":
            self.user_accountant = self.user_accountant or UserLevelAccountant(privacy)
        self.optimizer = self.optimizer or server_optimizer_for(self.cfg.federation)

    def _store(self, pid: int) -> ClientStateStore:
        return ClientStateStore(self.state_root / f"partition-{pid}")

    def train_round(self, partitions: Sequence[int], server_round: int) -> float:
        """Train ``partitions`` on the current model and aggregate; returns seconds taken."""
        t0 = time.perf_counter()
        privacy = self.cfg.privacy
        user_round = None
        if self.user_accountant is not None:
            delta = self.user_accountant.fix_delta(self.num_partitions)
            user_round = user_round_for(privacy, delta)  # the clients' ledgers (local/secagg)
        deltas = []
        noise_seeds: list[tuple[int, int]] = []  # as the ClientApp's, used if reproducible
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
                user_round=user_round,
            )
            deltas.append({k: update[k] - v for k, v in self.shared.items()})
            noise_seeds.append((client_seed(self.cfg, pid), server_round))
            if user_round is not None and self.user_accountant is not None:
                # As the ClientApp's user-epsilon metric: what the client's ledger holds.
                state = self._store(pid).load()
                spent = state.reported_user_epsilon if state else 0.0
                self.user_accountant.observe_clients(spent)
        fed = self.cfg.federation
        assert self.optimizer is not None
        if self.user_accountant is not None and deltas:
            self.last_norms = [update_norm(d) for d in deltas]
            self.user_accountant.record_round(
                sampled=len(partitions), available=self.num_partitions
            )
        if self.central_noise is not None and deltas:
            # As FedRecStrategy.aggregate_train under user-dp=central: clip each update, sum,
            # noise the sum once, divide by the number of clients sampled, no screening.
            total = self.central_noise.noised_sum(deltas)
            self.shared = self.optimizer.step(self.shared, mean_of_sum(total, len(partitions)))
            return time.perf_counter() - t0
        if privacy.user_dp == "secagg" and deltas:
            # As FedRecStrategy.aggregate_secure: the secure sum over the sampled clients.
            total = unmasked_secure_sum(
                [
                    self._client_noised(d, len(partitions), seeds)
                    for d, seeds in zip(deltas, noise_seeds, strict=True)
                ],
                privacy,
            )
            self.shared = self.optimizer.step(self.shared, mean_of_sum(total, len(partitions)))
            return time.perf_counter() - t0
        if privacy.user_dp == "local":
            deltas = [
                self._client_noised(d, len(partitions), seeds)
                for d, seeds in zip(deltas, noise_seeds, strict=True)
            ]
        new, _, norms = apply_updates(
            self.shared,
            deltas,
            self.optimizer,
            aggregation=fed.aggregation,
            trim_fraction=fed.trim_fraction,
            norm_factor=fed.update_norm_factor,
        )
        if privacy.user_dp == "off":
            self.last_norms = [float(x) for x in norms]
        if new is not None:
            self.shared = new
        return time.perf_counter() - t0

    def _client_noised(self, delta: Arrays, sampled: int, seeds: Sequence[int]) -> Arrays:
        """The update a client sends under user-dp local/secagg, as a delta.

        The ClientApp's own :func:`noised_update`, told SecAgg+'s threshold as the
        workflow would tell it.
        """
        privacy = self.cfg.privacy
        survivors = secagg_threshold(privacy, sampled) if privacy.user_dp == "secagg" else None
        zero = {k: np.zeros_like(v) for k, v in delta.items()}
        # From a zero model the reply is the noised delta under both placements.
        return noised_update(self.cfg, zero, delta, survivors=survivors, seeds=seeds)

    def record_epsilons(self) -> list[float]:
        """The record-level ε each client's own accountant holds (clients that trained)."""
        states = (self._store(pid).load() for pid in range(self.num_partitions))
        return [float(state.epsilon) for state in states if state is not None]

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


def unmasked_secure_sum(vectors: Sequence[Arrays], privacy: PrivacyConfig) -> Arrays:
    """The sum SecAgg+ would unmask for ``vectors``, by its arithmetic, without the masks.

    Every vector is quantized as Flower's ``secaggplus_mod`` does (clip to the range,
    stochastic rounding to the levels), the integers are summed (the range and levels are
    chosen so that the sum cannot wrap, see :mod:`fedrec.server.secagg`), and the sum is
    dequantized and shifted back as Flower's workflow does. The masks are left out: they
    cancel exactly in the integer sum.
    """
    if not vectors:
        raise ValueError("no vectors to sum")
    names = list(vectors[0])
    cr, levels = clipping_range(privacy), quantization_levels(len(vectors))
    totals = [np.zeros(np.shape(vectors[0][n]), np.int64) for n in names]
    for vec in vectors:
        for total, q in zip(totals, quantize([vec[n] for n in names], cr, levels), strict=True):
            total += q
    summed = dequantize(totals, cr, levels)
    offset = -(len(vectors) - 1) * cr
    return {n: np.asarray(v, np.float64) + offset for n, v in zip(names, summed, strict=True)}


def sample_partitions(num_partitions: int, fraction: float, *, seed: int, rnd: int) -> list[int]:
    """A seeded sample of ``fraction`` of the partitions (at least one)."""
    n = max(1, int(num_partitions * fraction + 1e-9))
    rng = np.random.default_rng([seed, rnd])
    return sorted(rng.choice(num_partitions, n, replace=False).tolist())
