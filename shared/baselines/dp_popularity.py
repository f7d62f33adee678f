"""DP popularity: item counts released once under user-level differential privacy.

The honest private baseline: what a server can publish about what is popular while every
user's whole history stays protected. The mechanism:

1. **Bounded contribution.** User ``u``'s training items, as a 0/1 indicator vector ``x_u``
   over the catalogue, are scaled to L2 norm 1: ``x_u / sqrt(|x_u|)``. Adding or removing a
   user, with everything they trained on, moves the sum by at most 1 in L2, however many
   items they have: the sensitivity is 1 (a heavy user weighs no more than a light one).
2. **Gaussian mechanism.** The sum over users gets ``N(0, σ²)`` noise on *every* item,
   trained on or not, once. Nothing else about the data is released; ranking the noisy
   vector is post-processing.
3. **Accounting.** σ is the smallest noise multiplier whose ε, by the project's user-level
   accountant (one Gaussian mechanism, no sampling), is at most the target ε at
   ``δ = 1/N^1.1`` (N = users): :func:`fedrec.shared.privacy.calibrate_release`.

Each call of :meth:`DPPopularity.fit` is a fresh release with fresh noise from
:class:`fedrec.shared.privacy.SecureRandom`: publishing two of them spends the budget twice.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from fedrec.shared.baselines.base import Recommender, interaction_matrix
from fedrec.shared.data.dataset import Split
from fedrec.shared.privacy import (
    DPRandom,
    SecureRandom,
    account,
    calibrate_release,
    default_delta,
)
from fedrec.shared.privacy.report import USER_UNIT as UNIT

logger = logging.getLogger(__name__)

SENSITIVITY = 1.0
MECHANISM = (
    "Gaussian mechanism on the sum over users of each user's training-item indicator vector "
    "scaled to L2 norm 1 (sensitivity 1 under adding or removing a user); N(0, σ²) on every "
    "item, released once"
)
COVERS = "the released item scores, with respect to every training interaction of one user"


def user_contributions(split: Split) -> sp.csr_matrix:
    """Each user's training-item indicator row scaled to L2 norm 1 (users without items: 0)."""
    x = interaction_matrix(split, np.float64)
    per_user = np.diff(x.indptr)
    scale = np.zeros(split.n_users, dtype=np.float64)
    has = per_user > 0
    scale[has] = 1.0 / np.sqrt(per_user[has])
    return sp.csr_matrix(sp.diags(scale) @ x)


@dataclass(frozen=True)
class Release:
    """What one DP popularity release spent, and how."""

    target_epsilon: float
    epsilon: float  # accounted for the σ used, <= target_epsilon
    delta: float
    noise_multiplier: float
    sensitivity: float
    accountant: str
    users: int
    unit: str = UNIT
    mechanism: str = MECHANISM
    covers: str = COVERS

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


class DPPopularity(Recommender):
    """Popularity from one user-level DP release of the item counts (see the module doc)."""

    name = "dp-popularity"

    def __init__(
        self,
        *,
        epsilon: float,
        delta: float | None = None,
        accountant: str = "rdp",
        rng: DPRandom | None = None,
    ) -> None:
        super().__init__()
        if not (epsilon > 0 and math.isfinite(epsilon)):
            raise ValueError(f"epsilon must be a positive number, got {epsilon}")
        if delta is not None and not 0 < delta < 1:
            raise ValueError(f"delta must be in (0, 1), got {delta}")
        self.epsilon = float(epsilon)
        self.delta = delta
        self.accountant = accountant
        self._rng = rng  # None: a fresh CSPRNG stream for every release
        self.release: Release | None = None
        self._scores = np.zeros(0)

    def params(self) -> dict[str, Any]:
        """The target ε, δ (None: 1/N^1.1) and the accountant."""
        return {"epsilon": self.epsilon, "delta": self.delta, "accountant": self.accountant}

    def fitted(self) -> dict[str, Any]:
        """The release: σ, the accounted ε and δ, the mechanism."""
        return {} if self.release is None else self.release.to_dict()

    def _fit(self, split: Split) -> None:
        delta = self.delta if self.delta is not None else default_delta(split.n_users)
        sigma = calibrate_release(self.epsilon, delta, accountant=self.accountant)
        exact = np.asarray(user_contributions(split).sum(axis=0)).ravel()
        noise = (self._rng or SecureRandom()).normal(split.n_items, sigma * SENSITIVITY)
        self._scores = exact + noise
        self._scores.setflags(write=False)
        spent = account([(sigma, 1.0, 1)], delta, self.accountant)
        self.release = Release(
            target_epsilon=self.epsilon,
            epsilon=spent.epsilon,
            delta=delta,
            noise_multiplier=sigma,
            sensitivity=SENSITIVITY,
            accountant=spent.accountant,
            users=split.n_users,
        )
        logger.debug("DP popularity released at σ %.3f: %s", sigma, self.release)

    def _score(self, users: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self._scores, (users.shape[0], self._scores.shape[0]))
