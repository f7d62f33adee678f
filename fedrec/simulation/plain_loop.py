"""The plain loop: the same federated rounds in one process, without Flower.

It calls what a Flower round calls -- the client's :func:`~fedrec.client.cohort.train_cohort`
(data view, local DP training, user-level noise, budget refusal, private state on disk; all
of a round's clients as one cohort) and
the server's :class:`~fedrec.server.rounds.RoundRules` (screening, combining, central noise,
the server optimizer) and :class:`~fedrec.server.rounds.RunPrivacy` -- and leaves out only
the messaging, serialization and actor scheduling. It is the baseline of the
framework-overhead benchmark and what the quality, privacy and cold-start benchmarks train
with.

Under ``user-dp = secagg`` each client adds its noise share for the survivors Flower's
SecAgg+ workflow would size it for (:func:`fedrec.server.secagg.noise_survivors`), and the sum is
computed with SecAgg+'s own arithmetic without the masks
(:func:`fedrec.server.secagg.unmasked_secure_sum`); the protocol itself (keys, shares,
dropouts) runs only under Flower (``fedrec simulate``; tests/server/test_secagg.py).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fedrec.client.cohort import Member, train_cohort
from fedrec.client.dataview import client_seed, load_client_data
from fedrec.client.evaluation import local_user_evals
from fedrec.client.state import ClientStateStore
from fedrec.client.task import train_round
from fedrec.server.aggregation import ServerOptimizer, server_optimizer_for
from fedrec.server.rounds import Reply, RoundRules, RunPrivacy, SecureSum
from fedrec.server.secagg import noise_survivors, unmasked_secure_sum
from fedrec.server.user_dp import CentralNoise, UserLevelAccountant, central_noise_for
from fedrec.shared.config import FedRecConfig
from fedrec.shared.evaluation import UserEval, summarize
from fedrec.shared.privacy import user_round_for

Arrays = dict[str, np.ndarray]


@dataclass
class PlainLoop:
    """The global tensors + client states under ``state_root``, advanced round by round."""

    cfg: FedRecConfig
    num_partitions: int
    global_tensors: dict[str, np.ndarray]
    state_root: Path
    device: torch.device = torch.device("cpu")  # noqa: B008 - immutable default
    optimizer: ServerOptimizer | None = None
    # user-dp=central: the server's clip-and-noise.
    central_noise: CentralNoise | None = None
    user_accountant: UserLevelAccountant | None = None
    # The L2 norms of the last round's client updates before any user-level clip or noise
    # (a simulation diagnostic: under user-level DP nobody publishes them).
    last_norms: list[float] = field(default_factory=list)
    # The last round's metrics, as a Flower round's checkpoint history row holds them.
    last_metrics: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        privacy, fed = self.cfg.privacy, self.cfg.federation
        if privacy.user_dp == "central":
            self.central_noise = self.central_noise or central_noise_for(self.cfg)
        self.user_accountant = self.user_accountant or UserLevelAccountant(privacy)
        self.optimizer = self.optimizer or server_optimizer_for(fed)
        self.rules = RoundRules(
            self.optimizer,
            aggregation=fed.aggregation,
            trim_fraction=fed.trim_fraction,
            update_norm_factor=fed.update_norm_factor,
            accept_failures=fed.accept_failures,
            central_noise=self.central_noise,
        )
        self.spent = RunPrivacy(privacy, self.user_accountant)

    def _store(self, pid: int) -> ClientStateStore:
        return ClientStateStore(self.state_root / f"partition-{pid}")

    def _member(self, pid: int) -> Member:
        data = load_client_data(self.cfg, pid, self.num_partitions)
        return Member(pid, data, self._store(pid), client_seed(self.cfg, pid))

    def train_round(self, partitions: Sequence[int], server_round: int) -> float:
        """Train ``partitions`` on the current model and aggregate; returns seconds taken."""
        t0 = time.perf_counter()
        privacy = self.cfg.privacy
        assert self.user_accountant is not None
        user_round = None
        if self.user_accountant.enabled:
            delta = self.user_accountant.fix_delta(self.num_partitions)
            user_round = user_round_for(privacy, delta)  # the clients' ledgers (local/secagg)
        survivors = None
        if privacy.user_dp == "secagg":
            survivors = noise_survivors(privacy, len(partitions))  # as the workflow sets it
        if privacy.user_dp == "secagg":
            # Every user is its own SecAgg+ party: trained one by one, with its share.
            replies = [
                train_round(
                    self.cfg,
                    load_client_data(self.cfg, pid, self.num_partitions),
                    self.global_tensors,
                    self._store(pid),
                    server_round=server_round,
                    seed=client_seed(self.cfg, pid),
                    device=self.device,
                    user_round=user_round,
                    survivors=survivors,
                )
                for pid in partitions
            ]
        else:
            replies = train_cohort(
                self.cfg,
                [self._member(pid) for pid in partitions],
                self.global_tensors,
                server_round=server_round,
                device=self.device,
                user_round=user_round,
            )
        failed = [(pid, r.error) for pid, r in zip(partitions, replies, strict=True) if r.error]
        if failed:
            raise RuntimeError(f"{len(failed)} clients failed, e.g. partition {failed[0]}")
        self.last_norms = [r.update_norm for r in replies if r.update_norm is not None]
        if privacy.user_dp == "secagg" and replies:
            secure = SecureSum(
                sampled=len(partitions),
                total=unmasked_secure_sum([r.arrays for r in replies], privacy),
                survivors=len(replies),
                metrics=[dict(r.metrics) for r in replies],
            )
            result = self.rules.aggregate_secure(server_round, self.global_tensors, secure)
        else:
            answers = [
                Reply(pid, r.arrays, r.metrics) for pid, r in zip(partitions, replies, strict=True)
            ]
            result = self.rules.aggregate(
                server_round, self.global_tensors, answers, sampled=len(partitions)
            )
        if result.model is not None:
            self.global_tensors = result.model
        self.last_metrics = dict(result.metrics)
        self.spent.after_round(self.last_metrics, available=self.num_partitions)
        return time.perf_counter() - t0

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
                self.global_tensors,
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
