"""Record-level DP-SGD helpers around Opacus: one accountant per client for the whole run.

Flower's own Opacus example builds a new PrivacyEngine every round, so the epsilon it
reports covers one round. Here the accountant's history (noise multiplier, sample rate,
steps) is saved in the client's state after every round and restored before the next, so
the epsilon a client reports is what *all* its training so far has spent.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from opacus.accountants import RDPAccountant
from opacus.accountants.analysis import rdp as rdp_analysis

from fedrec.shared.config import PrivacyConfig

logger = logging.getLogger(__name__)


def mechanism_for(cfg: PrivacyConfig) -> str:
    """The mechanism as the report states it, with how records are sampled into steps."""
    if cfg.dp_sample_rate >= 1:
        return "DP-SGD (Opacus, full batch: every record in every step, RDP accountant)"
    return f"DP-SGD (Opacus, Poisson sampling at rate {cfg.dp_sample_rate:g}, RDP accountant)"


UNIT = "record"
COVERS = (
    "Each client's training on its own interactions: one (user, item) interaction is the "
    "protected unit. Covers every parameter trained on those records (the private user "
    "factor and the shared item factors/biases), hence every update the client sends. Does "
    "not cover: that the user took part, how many interactions they have (the sampling rate "
    "is derived from it), federated-evaluation metrics, or public item metadata."
)

# RDP orders used to convert to (epsilon, delta). Any set of orders gives a valid bound;
# Opacus' default grid adds ~100 fractional orders whose evaluation dominated a client's
# round time. This grid is 3-4x cheaper and reports an epsilon at most a few percent larger
# (more conservative) for noise multipliers >= 0.8; it is a valid upper bound for any.
RDP_ORDERS: tuple[float, ...] = (
    1.25,
    1.5,
    1.75,
    2.5,
    3.5,
    *map(float, range(2, 64)),
    80.0,
    128.0,
    256.0,
)

HistoryEntry = tuple[float, float, int]  # (noise_multiplier, sample_rate, steps)


def make_accountant(history: Sequence[Sequence[float]] | None = None) -> RDPAccountant:
    """An RDP accountant restored from a saved history (empty when ``None``)."""
    accountant = RDPAccountant()
    if history:
        accountant.load_state_dict(
            {"history": [(float(s), float(q), int(n)) for s, q, n in history], "mechanism": "rdp"}
        )
    return accountant


def history_of(accountant: RDPAccountant) -> list[HistoryEntry]:
    """The accountant's history as plain tuples, ready for JSON/records."""
    return [(float(s), float(q), int(n)) for s, q, n in accountant.history]


@lru_cache(maxsize=4096)
def _rdp_per_step(sample_rate: float, noise_multiplier: float) -> np.ndarray:
    # Opacus' own RDP of one subsampled-Gaussian step. Cached: a simulation process serves
    # many clients with the same (q, sigma), and this pure-Python series was a third of a
    # DP client's round time.
    return np.asarray(
        rdp_analysis.compute_rdp(
            q=sample_rate, noise_multiplier=noise_multiplier, steps=1, orders=list(RDP_ORDERS)
        ),
        dtype=np.float64,
    )


def epsilon_of(history: Sequence[Sequence[float]], delta: float) -> float:
    """Epsilon spent by a history of DP-SGD steps at ``delta`` (0 for an empty history).

    The same arithmetic as ``RDPAccountant.get_epsilon`` (RDP composes additively, and a
    run of identical steps is ``steps`` times one step), on :data:`RDP_ORDERS`.
    """
    if not history:
        return 0.0
    rdp = sum(int(n) * _rdp_per_step(float(q), float(s)) for s, q, n in history)
    eps, _ = rdp_analysis.get_privacy_spent(orders=list(RDP_ORDERS), rdp=rdp, delta=delta)
    return float(eps)


@dataclass(frozen=True)
class PrivacyReport:
    """What a model's privacy guarantee is, stated with its unit and coverage."""

    unit: str
    mechanism: str
    epsilon: float | None
    delta: float
    noise_multiplier: float
    max_grad_norm: float
    covers: str
    epsilon_scope: str = "maximum over all clients so far (a bound for every user's records)"

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict (used in manifests and the HTTP API)."""
        return {
            "unit": self.unit,
            "mechanism": self.mechanism,
            "epsilon": self.epsilon,
            "delta": self.delta,
            "noise_multiplier": self.noise_multiplier,
            "max_grad_norm": self.max_grad_norm,
            "covers": self.covers,
            "epsilon_scope": self.epsilon_scope,
        }


def report_for(cfg: PrivacyConfig, epsilon: float | None) -> dict[str, object] | None:
    """The manifest's ``privacy`` entry; ``None`` when DP is off (no claim is made)."""
    if not cfg.dp_enabled:
        return None
    covers = COVERS
    if cfg.reproducible_noise:
        covers += (
            " WARNING: reproducible-noise=true seeded the noise from the public run seed; "
            "anyone who knows the seed can remove it, so this guarantee does not hold."
        )
    return PrivacyReport(
        unit=UNIT,
        mechanism=mechanism_for(cfg),
        epsilon=epsilon,
        delta=cfg.target_delta,
        noise_multiplier=cfg.noise_multiplier,
        max_grad_norm=cfg.max_grad_norm,
        covers=covers,
    ).to_dict()
