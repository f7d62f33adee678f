"""Privacy accounting: (ε, δ) of a history of Gaussian mechanisms, record and user level.

A history is a list of ``(noise_multiplier, sample_rate, steps)`` entries, the form Opacus'
accountants keep. Record-level DP-SGD (one client's steps) and user-level DP (the rounds of
a federation) are both subsampled Gaussian mechanisms and are accounted by the same code:

- ``rdp``: Opacus' RDP analysis (:func:`epsilon_of`), on :data:`RDP_ORDERS`;
- ``prv``: Opacus' PRV accountant (Gopi et al. 2021), tighter, numerical. Its grid grows
  with the privacy loss; where it would not fit in memory fedrec falls back to RDP (a valid,
  looser bound) and says so (:func:`account`).

Flower's own Opacus example builds a new PrivacyEngine every round, so the epsilon it
reports covers one round. Here a client's history is saved in its state after every round
and restored before the next, so the epsilon it reports is what *all* its training so far
has spent.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from fedrec.shared.config import PrivacyConfig
from fedrec.shared.errors import AccountingError

if TYPE_CHECKING:
    from opacus.accountants import RDPAccountant

logger = logging.getLogger(__name__)

_RDP_MODULE = "opacus.accountants.analysis.rdp"

# RDP orders used to convert to (epsilon, delta). Any set of orders gives a valid bound;
# Opacus' default grid adds many fractional orders whose evaluation dominated a client's
# round time, and this coarser grid can only report a slightly larger (more conservative)
# epsilon (tests/shared/privacy/test_accounting.py compares the two).
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


@cache
def rdp_analysis() -> ModuleType:
    """Opacus' RDP analysis (``opacus.accountants.analysis.rdp``), without Opacus' package.

    Importing ``opacus`` runs its ``__init__``, which loads its grad samplers, optimizers,
    ``torch.distributed`` and ``scipy.stats``: a server or a batched simulation worker that
    only accounts would carry all of it. The analysis is one file needing numpy and
    ``scipy.special``; it is loaded from Opacus' installation as it is, so the arithmetic is
    Opacus' own. Where Opacus is imported already its module is used.
    """
    loaded = sys.modules.get(_RDP_MODULE)
    if loaded is not None:
        return loaded
    package = importlib.util.find_spec("opacus")  # locates the package, runs none of it
    if package is None or package.origin is None:
        raise ModuleNotFoundError("opacus is not installed")
    path = Path(package.origin).parent / "accountants" / "analysis" / "rdp.py"
    spec = importlib.util.spec_from_file_location("fedrec._opacus_rdp_analysis", path)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"cannot load Opacus' RDP analysis from {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class StepHistory:
    """The steps of DP-SGD as Opacus' ``RDPAccountant`` records them, and nothing else.

    The batched cohort trainer needs only the history (ε comes from :func:`epsilon_of`);
    this keeps Opacus out of its process. Consecutive steps at the same (σ, q) merge into one
    entry, as ``RDPAccountant.step`` merges them.
    """

    def __init__(self, history: Sequence[Sequence[float]] | None = None) -> None:
        entries = history or ()
        self.history: list[HistoryEntry] = [(float(s), float(q), int(n)) for s, q, n in entries]

    def step(self, *, noise_multiplier: float, sample_rate: float) -> None:
        """Record one step at ``noise_multiplier`` and ``sample_rate``."""
        if self.history and self.history[-1][:2] == (noise_multiplier, sample_rate):
            s, q, n = self.history[-1]
            self.history[-1] = (s, q, n + 1)
        else:
            self.history.append((noise_multiplier, sample_rate, 1))


def make_accountant(history: Sequence[Sequence[float]] | None = None) -> RDPAccountant:
    """An RDP accountant restored from a saved history (empty when ``None``)."""
    from opacus.accountants import RDPAccountant

    accountant = RDPAccountant()
    if history:
        accountant.load_state_dict(
            {"history": [(float(s), float(q), int(n)) for s, q, n in history], "mechanism": "rdp"}
        )
    return accountant


def history_of(accountant: RDPAccountant | StepHistory) -> list[HistoryEntry]:
    """The accountant's history as plain tuples, ready for JSON/records."""
    return [(float(s), float(q), int(n)) for s, q, n in accountant.history]


@lru_cache(maxsize=4096)
def _rdp_per_step(sample_rate: float, noise_multiplier: float) -> np.ndarray:
    # Opacus' own RDP of one subsampled-Gaussian step. Cached: a simulation process serves
    # many clients with the same (q, sigma), and this pure-Python series was a third of a
    # DP client's round time.
    return np.asarray(
        rdp_analysis().compute_rdp(
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
    eps, _ = rdp_analysis().get_privacy_spent(orders=list(RDP_ORDERS), rdp=rdp, delta=delta)
    return float(eps)


# PRV discretises the privacy-loss distribution on a grid that grows with the privacy loss;
# beyond this many points its FFTs need gigabytes.
PRV_MAX_POINTS = 5_000_000
PRV_EPS_ERROR = 0.01


def default_delta(n_clients: int) -> float:
    """``1 / N^1.1``: below 1/N, as δ must be (McMahan et al. 2018 use the same)."""
    return 1.0 / max(n_clients, 2) ** 1.1


def resolve_delta(privacy: PrivacyConfig, n_clients: int) -> float:
    """``user-delta``, or :func:`default_delta` when it is 0."""
    return privacy.user_delta if privacy.user_delta > 0 else default_delta(n_clients)


def prv_grid_points(history: Sequence[HistoryEntry], delta: float) -> float:
    """How many points Opacus' PRV accountant would discretise ``history`` on (an estimate).

    The same domain and mesh Opacus chooses (Gopi et al.'s bounds), computed without
    allocating them.
    """
    from opacus.accountants.analysis.prv import (
        PoissonSubsampledGaussianPRV,
        compute_safe_domain_size,
    )

    delta_error = delta / 1000
    prvs = [PoissonSubsampledGaussianPRV(float(q), float(s)) for s, q, _ in history]
    steps = [int(n) for _, _, n in history]
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        half_width = compute_safe_domain_size(
            prvs=prvs,
            max_self_compositions=steps,
            eps_error=PRV_EPS_ERROR,
            delta_error=delta_error,
        )
    mesh = PRV_EPS_ERROR / math.sqrt(sum(steps) * math.log(12 / delta_error) / 2)
    return 2 * float(half_width) / mesh


def prv_epsilon(history: Sequence[HistoryEntry], delta: float) -> float:
    """Epsilon of ``history`` by Opacus' PRV accountant (its upper estimate).

    Raises :class:`AccountingError` when the computation would not fit in memory or fails.
    """
    from opacus.accountants import PRVAccountant

    points = prv_grid_points(history, delta)
    if not math.isfinite(points) or points > PRV_MAX_POINTS:
        raise AccountingError(
            f"the PRV accountant would need {points:.3g} grid points (limit "
            f"{PRV_MAX_POINTS:.0e}) for history {list(history)} at delta {delta:g}: the "
            "privacy loss is too large for it; use accountant=rdp or more noise"
        )
    accountant = PRVAccountant()
    accountant.history = [(float(s), float(q), int(n)) for s, q, n in history]
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            eps = float(accountant.get_epsilon(delta, eps_error=PRV_EPS_ERROR))
    except (ValueError, RuntimeError, FloatingPointError, MemoryError) as err:
        raise AccountingError(f"the PRV accountant failed for {list(history)}: {err}") from err
    if not math.isfinite(eps):
        raise AccountingError(f"the PRV accountant gave epsilon {eps} for {list(history)}")
    return eps


@dataclass(frozen=True)
class Accounted:
    """An epsilon and how it was obtained."""

    epsilon: float
    accountant: str  # the accountant that produced it
    note: str | None = None  # why it is not the one asked for


def account(history: Sequence[HistoryEntry], delta: float, accountant: str) -> Accounted:
    """Epsilon of ``history`` at ``delta`` by ``accountant`` (``rdp`` | ``prv``).

    An empty history costs nothing. If PRV cannot be computed the RDP bound is returned,
    with the reason in ``note`` (and a warning in the log).
    """
    if not history or all(int(n) == 0 for _, _, n in history):
        return Accounted(0.0, accountant)
    if accountant == "prv":
        try:
            return Accounted(prv_epsilon(history, delta), "prv")
        except AccountingError as err:
            logger.warning("%s; reporting the RDP bound instead", err)
            return Accounted(epsilon_of(history, delta), "rdp", note=f"prv unavailable: {err}")
    if accountant != "rdp":
        raise ValueError(f"accountant must be rdp or prv, got {accountant!r}")
    return Accounted(epsilon_of(history, delta), "rdp")


def compress(history: Sequence[Sequence[float]]) -> list[HistoryEntry]:
    """Consecutive entries with the same (σ, q) merged into one (σ, q, total rounds)."""
    out: list[HistoryEntry] = []
    for s, q, n in history:
        entry = (float(s), float(q), int(n))
        if out and out[-1][:2] == entry[:2]:
            out[-1] = (entry[0], entry[1], out[-1][2] + entry[2])
        else:
            out.append(entry)
    return out
