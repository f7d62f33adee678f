"""The server's part of user-level DP: central noise, and the global user-level account.

- :class:`CentralNoise` (``user-dp = central``): clip each client's update to ``C`` over
  all global tensors, sum, add ``N(0, (σC)²)`` to the sum *once*. The server is trusted
  with the raw updates; the guarantee is for what it publishes.
- :class:`UserLevelAccountant`: every round releases a sum of clipped updates carrying at
  least ``N(0, (σC)²)`` (central: added here; local: each client added all of it, so the sum
  carries K times as much; secagg: the clients' shares add up to at least that whenever
  SecAgg+ can unmask the sum). It accounts the subsampled Gaussian mechanism over the rounds
  with the real sampling rate ``q = sampled / connected`` of each round and writes the
  report into every checkpoint (see :mod:`fedrec.shared.privacy.accounting`).

Where the noise goes in a round, and what the noised sum is divided by, is the round's
decision (:mod:`fedrec.server.rounds`). The client's half of user-level DP (its own noise
and ledger) is :func:`fedrec.client.replies.noised_update` over
:mod:`fedrec.shared.privacy.user` and :mod:`fedrec.shared.privacy.ledger`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fedrec.server.aggregation import sum_updates
from fedrec.shared.checkpoint import latest_round
from fedrec.shared.config import FedRecConfig, PrivacyConfig
from fedrec.shared.privacy import (
    DPRandom,
    HistoryEntry,
    SecureRandom,
    clip_update,
    compress,
    dp_random,
    gaussian_noise_like,
    noise_std,
    resolve_delta,
    user_report,
)

logger = logging.getLogger(__name__)

Arrays = dict[str, np.ndarray]


@dataclass
class CentralNoise:
    """Clip every update, sum them, and noise the sum once (the server is trusted)."""

    clip: float
    noise_multiplier: float
    rng: DPRandom = field(default_factory=SecureRandom)

    def noised_sum(self, deltas: Sequence[Mapping[str, np.ndarray]]) -> Arrays:
        """``sum_k clip(delta_k) + N(0, (σC)²)`` on every coordinate of every tensor."""
        total = sum_updates([clip_update(d, self.clip)[0] for d in deltas])
        std = noise_std("central", self.noise_multiplier, self.clip)
        noise = gaussian_noise_like(total, std, self.rng)
        return {k: v + noise[k].astype(np.float64) for k, v in total.items()}


def central_noise_for(cfg: FedRecConfig) -> CentralNoise:
    """The run's central noise: CSPRNG, or seeded from the run seed if reproducible."""
    privacy = cfg.privacy
    rng = dp_random(
        reproducible=privacy.reproducible_noise,
        seeds=(cfg.data.seed, 3),
        what="central user-level noise",
    )
    return CentralNoise(privacy.user_clip, privacy.user_noise_multiplier, rng=rng)


def _latest_user_block(run_dir: Path) -> dict[str, Any] | None:
    rnd = latest_round(run_dir)
    if rnd is None:
        return None
    path = Path(run_dir) / "checkpoints" / f"round-{rnd:05d}" / "manifest.json"
    block = json.loads(path.read_text()).get("user_privacy")
    return block if isinstance(block, dict) else None


class UserLevelAccountant:
    """The run's user-level (ε, δ): one subsampled-Gaussian entry per round, kept on resume."""

    def __init__(
        self,
        privacy: PrivacyConfig,
        *,
        history: Sequence[Sequence[float]] = (),
        delta: float | None = None,
        n_clients: int = 0,
        epsilon_against_server: float = 0.0,
    ) -> None:
        self.privacy = privacy
        self.history: list[HistoryEntry] = compress(history)
        self.delta = delta
        self.n_clients = n_clients
        self.epsilon_against_server = epsilon_against_server

    @classmethod
    def for_run(cls, privacy: PrivacyConfig, run_dir: Path) -> UserLevelAccountant:
        """A fresh account, or the one in the run's latest checkpoint (resume)."""
        block = _latest_user_block(run_dir)
        if privacy.user_dp == "off" or block is None:
            return cls(privacy)
        if block.get("placement") != privacy.user_dp:
            logger.warning(
                "user-dp was %s in the checkpoints, now %s: accounting continues from them",
                block.get("placement"),
                privacy.user_dp,
            )
        return cls(
            privacy,
            history=[tuple(h) for h in block.get("history", [])],
            delta=float(block["delta"]),
            n_clients=int(block.get("clients", 0)),
            epsilon_against_server=float(block.get("epsilon_against_server") or 0.0),
        )

    @property
    def enabled(self) -> bool:
        """Whether user-level DP is on."""
        return self.privacy.user_dp != "off"

    def fix_delta(self, n_clients: int) -> float:
        """The run's delta, fixed the first time (``user-delta``, or 1/N^1.1 for N clients)."""
        if self.delta is None:
            self.n_clients = n_clients
            self.delta = resolve_delta(self.privacy, n_clients)
        return self.delta

    def train_config(self, n_clients: int) -> dict[str, Any]:
        """What clients need for their ledger: the placement and the run's delta."""
        if not self.enabled:
            return {}
        return {"user-dp": self.privacy.user_dp, "user-delta": self.fix_delta(n_clients)}

    def record_round(self, *, sampled: int, available: int) -> None:
        """One released round: ``sampled`` of ``available`` connected clients."""
        if not self.enabled or sampled <= 0:
            return
        q = min(1.0, sampled / max(available, sampled))
        self.history = compress([*self.history, (self.privacy.user_noise_multiplier, q, 1)])

    def observe_clients(self, epsilon_max: float | None) -> None:
        """The largest user-level epsilon a client's own ledger reported this round."""
        if epsilon_max is not None and np.isfinite(epsilon_max):
            self.epsilon_against_server = max(self.epsilon_against_server, float(epsilon_max))

    def report(self, *, federated_evaluation: bool = False) -> dict[str, object] | None:
        """The manifest's ``user_privacy`` block (``None`` when user-level DP is off)."""
        if not self.enabled:
            return None
        if self.delta is None:
            raise ValueError("no round has fixed the run's user-level delta yet")
        return user_report(
            self.privacy,
            history=self.history,
            delta=self.delta,
            n_clients=self.n_clients,
            epsilon_against_server=self.epsilon_against_server,
            federated_evaluation=federated_evaluation,
        )
