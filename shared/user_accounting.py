"""User-level privacy accounting: a subsampled Gaussian mechanism over federated rounds.

Each round releases ``sum of clipped client updates + N(0, (σC)²)`` (user-level DP-FedAvg,
McMahan et al. 2018): a Gaussian mechanism of sensitivity ``C`` (adding or removing one
user changes the sum by at most one clipped update), noise multiplier ``σ``, applied to the
clients sampled with rate ``q = clients per round / clients``. Composed over the rounds it
is the same object DP-SGD accounts for, so Opacus' accountants apply with one history
entry ``(σ, q, rounds)`` per run of identical rounds:

- ``rdp``: Opacus' RDP analysis (the arithmetic of :func:`fedrec.shared.privacy.epsilon_of`);
- ``prv``: Opacus' PRV accountant (Gopi et al. 2021), tighter, numerical. Its grid grows
  with the privacy loss; where it would not fit in memory fedrec falls back to RDP (a valid,
  looser bound) and says so in the report.

Two views are accounted:

- **released models** (anyone who reads a checkpoint or the HTTP API): the sample is secret
  to them, so sampling amplifies privacy (``q = K / N``);
- **the server**, which picks the sample and so knows whether a user took part: no
  amplification, each round a user took part in is a full Gaussian mechanism (``q = 1``).
  With ``central`` placement the server sees raw updates and there is no such guarantee.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fedrec.shared.config import PrivacyConfig
from fedrec.shared.errors import AccountingError
from fedrec.shared.privacy import HistoryEntry, epsilon_of

logger = logging.getLogger(__name__)

UNIT = "user"
# PRV discretises the privacy-loss distribution on a grid; beyond this many points its
# FFTs need gigabytes (a single round at σ = 0.1 wants ~10^9 points).
PRV_MAX_POINTS = 5_000_000
PRV_EPS_ERROR = 0.01

MECHANISMS = {
    "central": (
        "Gaussian mechanism on the sum of clipped client updates (user-level DP-FedAvg): the "
        "server clips each update to user-clip (L2 over all shared tensors) and adds "
        "N(0, (user-noise-multiplier * user-clip)^2) once to their sum"
    ),
    "local": (
        "Each client clips its update to user-clip (L2 over all shared tensors) and adds "
        "N(0, (user-noise-multiplier * user-clip)^2) to it before sending"
    ),
    "secagg": (
        "Gaussian mechanism on the sum of clipped client updates, noise distributed: each "
        "client clips its update to user-clip and adds N(0, (user-noise-multiplier * "
        "user-clip)^2 / t), t = the fewest survivors with which Flower's SecAgg+ can still "
        "unmask the sum; the server only learns the sum"
    ),
}
COVERS = {
    "central": (
        "Every published model (checkpoints, the HTTP API) with respect to everything one "
        "user contributed in every round. Not the server: it sees every raw update. Not "
        "federated-evaluation metrics, nor who took part."
    ),
    "local": (
        "Every update a client sends, hence the server's view and every published model, "
        "with respect to everything one user contributed. Not federated-evaluation "
        "metrics, nor who took part."
    ),
    "secagg": (
        "The server's view (only the noised sum of each round's updates, assuming it does "
        "not collude with clients) and every published model, with respect to everything "
        "one user contributed. Not federated-evaluation metrics, nor who took part."
    ),
}
AGAINST_SERVER = {
    "central": "none: the server sees every client's raw update",
    "local": "each client's own ledger (one Gaussian mechanism per round it took part in)",
    "secagg": (
        "each client's own ledger (one Gaussian mechanism per round it took part in); holds "
        "while the server does not collude with clients"
    ),
}
EPSILON_SCOPE = (
    "for anyone who reads the published models: the subsampled Gaussian mechanism over all "
    "rounds so far, with the real client sampling rate per round"
)


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


def user_report(
    privacy: PrivacyConfig,
    *,
    history: Sequence[HistoryEntry],
    delta: float,
    n_clients: int,
    epsilon_against_server: float | None,
) -> dict[str, object] | None:
    """The manifest's ``user_privacy`` entry; ``None`` when user-level DP is off."""
    placement = privacy.user_dp
    if placement == "off":
        return None
    accounted = account(history, delta, privacy.accountant)
    return {
        "unit": UNIT,
        "placement": placement,
        "mechanism": MECHANISMS[placement],
        "accountant": accounted.accountant,
        "accountant_note": accounted.note,
        "epsilon": accounted.epsilon,
        "delta": delta,
        "noise_multiplier": privacy.user_noise_multiplier,
        "clip": privacy.user_clip,
        "rounds": int(sum(n for _, _, n in history)),
        "sample_rate": float(history[-1][1]) if history else None,
        "clients": n_clients,
        "epsilon_scope": EPSILON_SCOPE,
        "epsilon_against_server": None if placement == "central" else epsilon_against_server,
        "against_server": AGAINST_SERVER[placement],
        "covers": COVERS[placement],
        "history": [list(h) for h in history],
    }
