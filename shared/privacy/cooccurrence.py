"""The private co-occurrence release: one Gaussian mechanism on a sum over users.

Each user's term is its item co-occurrence ``x xᵀ / n`` released as a vector of L2 norm 1
(:func:`fedrec.shared.models.cooccurrence.contribution`), so adding or removing a user,
with everything it holds, moves the sum by at most 1: sensitivity 1. The sum carries
``N(0, σ²)`` on every entry, σ calibrated to the target ε at δ by the user-level
accountant, with the noise placed as ``user-dp`` says:

- ``central``: the server adds it once to the sum of exact terms (it sees every term);
- ``secagg``: each client adds ``σ / sqrt(t - c)`` (``t`` the fewest survivors SecAgg+
  unmasks for, ``c`` = ``secagg-max-colluders``), so whoever drops out, the sum of the
  honest survivors' shares has variance at least σ², and the server sees only the sum;
- ``local``: each client adds all of σ, so even its own vector is (ε, δ)-DP;
- ``off``: no noise (no guarantee).

It is released once; nothing else about the data leaves a client (the item factors, the
text heads and every ranking are post-processing). The rank of the factors is a default
chosen once on ML-100K's validation split, not tuned per run (docs/privacy.md).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from fedrec.shared.config import CooccurrenceConfig, PrivacyConfig
from fedrec.shared.privacy.accounting import account, resolve_delta
from fedrec.shared.privacy.calibrate import calibrate_release
from fedrec.shared.privacy.report import REPRODUCIBLE_WARNING, USER_UNIT
from fedrec.shared.privacy.user import noise_std

MECHANISM = (
    "Gaussian mechanism, released once, on the sum over users of each user's item "
    "co-occurrence x xᵀ/n as a vector of L2 norm 1 (sensitivity 1 under adding or "
    "removing a user); N(0, σ²) on every entry"
)
COVERS = (
    "the released co-occurrence sum and everything built from it (the item factors, the "
    "text heads fitted to them on public item texts, every ranking), with respect to every "
    "training interaction of one user"
)
AGAINST_SERVER = {
    "central": "none: the server sees each user's exact term before it adds the noise",
    "secagg": "the server sees only the SecAgg+ sum, which carries at least σ of noise if "
    "at most secagg-max-colluders survivors collude with it (and, with secagg-min-survivors "
    "above SecAgg+'s threshold, if it keeps its survivor floor)",
    "local": "each user's own vector is already (ε, δ)-DP",
}


@dataclass(frozen=True)
class ReleasePlan:
    """How the one release is noised: σ on the sum and what each party adds."""

    placement: str
    users: int
    noise_multiplier: float  # std of the noise on the sum (sensitivity 1); 0 when off
    client_std: float  # what each client adds to its own vector
    server_std: float  # what the server adds to the sum
    target_epsilon: float | None
    epsilon: float | None  # accounted for noise_multiplier, <= target
    delta: float | None
    accountant: str | None
    survivors: int | None  # secagg: the fewest survivors the shares are sized for
    colluders: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


def plan_release(
    privacy: PrivacyConfig,
    cooccurrence: CooccurrenceConfig,
    n_users: int,
    *,
    survivors: int | None = None,
    delta: float | None = None,
) -> ReleasePlan:
    """The noise of one release for ``n_users`` users (``survivors``: secagg only).

    ``delta`` (default: ``user-delta``, or 1/N^1.1) lets a client use the run's δ as the
    server states it, where the client does not know how many users the federation has.
    """
    placement = privacy.user_dp
    if n_users < 1:
        raise ValueError(f"a release needs at least one user, got {n_users}")
    if placement == "off":
        return ReleasePlan("off", n_users, 0.0, 0.0, 0.0, None, None, None, None, None, 0)
    if delta is None:
        delta = resolve_delta(privacy, n_users)
    if not 0 < delta < 1:
        raise ValueError(f"delta must be in (0, 1), got {delta}")
    target = cooccurrence.cooccurrence_epsilon
    sigma = calibrate_release(target, delta, accountant=privacy.user_accountant)
    spent = account([(sigma, 1.0, 1)], delta, privacy.user_accountant)
    colluders = privacy.secagg_max_colluders if placement == "secagg" else 0
    share = noise_std(placement, sigma, 1.0, survivors=survivors, colluders=colluders)
    return ReleasePlan(
        placement=placement,
        users=n_users,
        noise_multiplier=sigma,
        client_std=0.0 if placement == "central" else share,
        server_std=sigma if placement == "central" else 0.0,
        target_epsilon=target,
        epsilon=spent.epsilon,
        delta=delta,
        accountant=spent.accountant,
        survivors=survivors if placement == "secagg" else None,
        colluders=colluders,
    )


def release_report(plan: ReleasePlan, *, reproducible_noise: bool) -> dict[str, Any] | None:
    """The manifest's ``user_privacy`` entry of a release; ``None`` without noise."""
    if plan.placement == "off":
        return None
    assert plan.epsilon is not None and math.isfinite(plan.epsilon)
    covers = COVERS + (REPRODUCIBLE_WARNING if reproducible_noise else "")
    return {
        "unit": USER_UNIT,
        "placement": plan.placement,
        "mechanism": MECHANISM,
        "accountant": plan.accountant,
        "epsilon": plan.epsilon,
        "delta": plan.delta,
        "noise_multiplier": plan.noise_multiplier,
        "clip": 1.0,
        "rounds": 1,
        "sample_rate": 1.0,
        "clients": plan.users,
        "epsilon_scope": "for anyone who reads the released model: one Gaussian mechanism",
        "epsilon_against_server": plan.epsilon if plan.placement != "central" else None,
        "against_server": AGAINST_SERVER[plan.placement],
        "covers": covers,
        "secagg_survivors": plan.survivors,
        "secagg_max_colluders": plan.colluders,
        "history": [[plan.noise_multiplier, 1.0, 1]],
    }
