"""Calibration: the smallest noise multiplier σ whose ε stays within a target.

One search, :func:`smallest_sigma`, serves every mechanism: it brackets σ by doubling and
halving, then bisects geometrically (ε falls as σ grows) until ε is within a relative
tolerance of the target or the bracket is within a relative tolerance in σ. On top of it:

- :func:`calibrate_record`: DP-SGD's σ for a target ε over a whole run of rounds (Opacus'
  ``get_noise_multiplier``, checked and if needed raised with fedrec's own accountant);
- :func:`calibrate_user`: user-level σ over rounds sampled at rate ``q``;
- :func:`calibrate_release`: σ of one Gaussian release of sensitivity 1 (DP popularity).

The result always satisfies ``ε(σ) <= target``: a calibration never rounds in the
mechanism's favour.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from fedrec.shared.config import PrivacyConfig, TrainConfig
from fedrec.shared.privacy.accounting import account, epsilon_of
from fedrec.shared.privacy.plan import dp_plan

# No search goes past this σ: a target it cannot reach is an error, not a hang.
MAX_SIGMA = 1e6


def smallest_sigma(
    eps_of: Callable[[float], float],
    target: float,
    *,
    epsilon_rtol: float = 0.01,
    sigma_rtol: float = 0.0,
    start: float = 1.0,
    floor: float = 1e-3,
    max_steps: int = 200,
) -> float:
    """The smallest σ, to a tolerance, whose ``eps_of(σ)`` is at most ``target``.

    ``eps_of`` must fall as σ grows. The search stops once ``eps_of(σ) >= (1 -
    epsilon_rtol) * target`` or once the bracket around the answer is narrower than a factor
    ``1 + sigma_rtol``; a σ at or below ``floor`` that already meets the target is returned
    as is. The result always satisfies ``eps_of(σ) <= target``.
    """
    if not (target > 0 and math.isfinite(target)):
        raise ValueError(f"target epsilon must be a positive number, got {target}")
    cache: dict[float, float] = {}

    def eps(sigma: float) -> float:
        if sigma not in cache:
            cache[sigma] = eps_of(sigma)
        return cache[sigma]

    hi = max(start, floor)
    while eps(hi) > target:
        hi *= 2
        if hi > MAX_SIGMA:
            raise ValueError(f"no noise multiplier up to {MAX_SIGMA:g} reaches epsilon {target}")
    lo = hi
    while eps(lo) <= target:
        if lo <= floor:
            return lo
        hi, lo = lo, lo / 2
    # eps(lo) > target >= eps(hi): bisect geometrically until hi is close enough.
    for _ in range(max_steps):
        if eps(hi) >= (1 - epsilon_rtol) * target or hi / lo <= 1 + sigma_rtol:
            break
        mid = math.sqrt(lo * hi)
        if eps(mid) > target:
            lo = mid
        else:
            hi = mid
    return hi


def user_epsilon(sigma: float, *, q: float, rounds: int, delta: float, accountant: str) -> float:
    """User-level ε of ``rounds`` rounds at σ and sampling rate ``q`` (fedrec's accountant)."""
    return account([(sigma, q, rounds)], delta, accountant).epsilon


def calibrate_user(
    target: float, *, q: float, rounds: int, delta: float, accountant: str = "rdp"
) -> dict[str, float]:
    """User-level σ for ``target`` over ``rounds`` rounds, with the ε it gives."""
    sigma = smallest_sigma(
        lambda s: user_epsilon(s, q=q, rounds=rounds, delta=delta, accountant=accountant), target
    )
    planned = user_epsilon(sigma, q=q, rounds=rounds, delta=delta, accountant=accountant)
    return {"target": target, "sigma": sigma, "planned_epsilon": planned}


def release_epsilon(noise_multiplier: float, delta: float, accountant: str = "rdp") -> float:
    """ε of one Gaussian release at noise multiplier σ (sensitivity 1, no sampling)."""
    return user_epsilon(
        float(noise_multiplier), q=1.0, rounds=1, delta=delta, accountant=accountant
    )


def calibrate_release(epsilon: float, delta: float, *, accountant: str = "rdp") -> float:
    """The smallest σ (to a relative 1e-4 in σ) whose one release costs at most ``epsilon``."""
    if not 0 < delta < 1:
        raise ValueError(f"delta must be in (0, 1), got {delta}")
    return smallest_sigma(
        lambda s: release_epsilon(s, delta, accountant),
        epsilon,
        epsilon_rtol=0.0,
        sigma_rtol=1e-4,
        floor=1e-4,
    )


def record_plans(
    n_records: Iterable[int], train: TrainConfig, privacy: PrivacyConfig
) -> Counter[tuple[float, int]]:
    """How many clients run each DP-SGD plan ``(sample rate, steps per round)``.

    The plan depends on public settings only, so every client runs the same one.
    """
    _, q, steps = dp_plan(train, privacy)
    return Counter({(float(q), int(steps)): sum(1 for _ in n_records)})


def record_epsilon(
    sigma: float, plans: Iterable[tuple[float, int]], rounds: int, delta: float
) -> float:
    """The largest ε, by fedrec's accountant, of a client training every round."""
    return max(epsilon_of([(sigma, q, steps * rounds)], delta) for q, steps in plans)


@dataclass(frozen=True)
class RecordCalibration:
    """σ of DP-SGD for a target ε over the run, and how it was found."""

    target: float
    sigma: float
    sigma_opacus: float
    planned_epsilon: float  # fedrec's accountant, worst plan, all rounds
    worst_plan: tuple[float, int]  # (q, steps per round)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "target": self.target,
            "sigma": self.sigma,
            "sigma_opacus": self.sigma_opacus,
            "planned_epsilon": self.planned_epsilon,
            "worst_plan": {
                "sample_rate": self.worst_plan[0],
                "steps_per_round": self.worst_plan[1],
            },
        }


def calibrate_record(
    target: float,
    plans: Iterable[tuple[float, int]],
    *,
    rounds: int,
    delta: float,
    candidates: int = 3,
) -> RecordCalibration:
    """DP-SGD's noise multiplier for ``target`` over ``rounds`` rounds of every plan.

    Opacus' ``get_noise_multiplier`` on the ``candidates`` plans that spend the most (at
    σ = 1), the largest σ taken; then checked with fedrec's accountant over all plans and
    raised by bisection if that accountant puts it above ``target``.
    """
    from opacus.accountants.utils import get_noise_multiplier

    plans = sorted(set(plans))
    if not plans:
        raise ValueError("no DP-SGD plans to calibrate")
    worst = sorted(plans, key=lambda p: -record_epsilon(1.0, [p], rounds, delta))[:candidates]
    sigma_opacus = max(
        float(
            get_noise_multiplier(
                target_epsilon=target,
                target_delta=delta,
                sample_rate=q,
                steps=steps * rounds,
                accountant="rdp",
                epsilon_tolerance=0.005 * target,
            )
        )
        for q, steps in worst
    )
    sigma = sigma_opacus
    if record_epsilon(sigma, plans, rounds, delta) > target:
        sigma = smallest_sigma(
            lambda s: record_epsilon(s, plans, rounds, delta), target, start=sigma_opacus
        )
    worst_plan = max(plans, key=lambda p: record_epsilon(sigma, [p], rounds, delta))
    return RecordCalibration(
        target=target,
        sigma=sigma,
        sigma_opacus=sigma_opacus,
        planned_epsilon=record_epsilon(sigma, plans, rounds, delta),
        worst_plan=worst_plan,
    )
