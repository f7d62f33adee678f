"""Empirical lower bounds on ε from canaries, in one training run.

Following Steinke, Nasr & Jagielski, "Privacy Auditing with One (1) Training Run" (2023):
``m`` canaries are each included in the training data independently with probability 1/2;
after training, an attacker scores every canary from what it can see, guesses "in" for the
``k+`` highest scores and "out" for the ``k-`` lowest, and abstains on the rest. If the
mechanism is (ε, δ)-DP with respect to one canary, the number of correct guesses among the
``r = k+ + k-`` made is stochastically dominated by Binomial(r, e^ε / (1 + e^ε)) up to a
δ term (their Theorem 5.2). The largest ε that this rejects at confidence 1 - β is an
empirical lower bound: a mechanism whose lower bound exceeds its accounted ε is broken.

The bound is valid for any scoring rule, so several attackers and several guess counts can
be tried; each is a separate test, and the confidence is split between them (Bonferroni).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

# Guess counts tried, as fractions of the canaries (each side): a fixed grid, chosen before
# any scores are seen, so the Bonferroni split below is honest.
GUESS_FRACTIONS: tuple[float, ...] = (0.02, 0.05, 0.1, 0.2, 0.5)


def p_value(m: int, r: int, v: int, epsilon: float, delta: float) -> float:
    """P[at least ``v`` of ``r`` guesses correct] for an (ε, δ)-DP mechanism, ``m`` canaries.

    The binomial tail of randomized response at ε, plus the δ correction of Steinke et al.
    (Theorem 5.2, Algorithm 2: ``2 m δ`` times the largest average per-step mass).
    """
    if not 0 <= v <= r <= m:
        raise ValueError(f"need 0 <= v <= r <= m, got v={v}, r={r}, m={m}")
    if epsilon < 0 or not 0 <= delta <= 1:
        raise ValueError(f"need epsilon >= 0 and delta in [0, 1], got {epsilon}, {delta}")
    q = 1.0 / (1.0 + math.exp(-epsilon))
    tail = float(stats.binom.sf(v - 1, r, q))
    if delta == 0 or v == 0:
        return min(tail, 1.0)
    # alpha = max over i in 1..v of P[v > Binomial(r, q) >= v - i] / i
    steps = np.arange(1, v + 1)
    mass = np.cumsum(stats.binom.pmf(v - steps, r, q))
    alpha = float(np.max(mass / steps))
    return min(tail + 2 * m * delta * alpha, 1.0)


def epsilon_lower_bound(
    m: int, r: int, v: int, delta: float, *, beta: float = 0.05, eps_max: float = 50.0
) -> float:
    """The largest ε rejected at level ``beta`` by ``v`` correct of ``r`` guesses (0: none).

    ``p_value`` falls as ε falls, so the set of rejected ε is ``[0, bound)``: found by
    bisection.
    """
    if r == 0 or p_value(m, r, v, 0.0, delta) > beta:
        return 0.0
    lo, hi = 0.0, eps_max
    if p_value(m, r, v, hi, delta) <= beta:
        return hi
    for _ in range(60):
        mid = (lo + hi) / 2
        if p_value(m, r, v, mid, delta) <= beta:
            lo = mid
        else:
            hi = mid
    return lo


@dataclass(frozen=True)
class AuditResult:
    """The best lower bound over attackers and guess counts, and how it was reached."""

    epsilon_lower_bound: float
    confidence: float
    canaries: int
    included: int
    attacker: str | None
    guesses: int
    correct: int
    tests: int  # attackers x guess counts: the confidence is split between them
    per_attacker: dict[str, float]
    # The bound a perfect attacker (every guess right) would reach with these canaries: a
    # claim at or above it cannot be shown broken by this audit, however leaky.
    power: float

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict."""
        return {
            "epsilon_lower_bound": self.epsilon_lower_bound,
            "confidence": self.confidence,
            "canaries": self.canaries,
            "included": self.included,
            "attacker": self.attacker,
            "guesses": self.guesses,
            "correct": self.correct,
            "tests": self.tests,
            "per_attacker": dict(self.per_attacker),
            "power": self.power,
        }


def _guess(scores: np.ndarray, included: np.ndarray, k: int) -> int:
    """Correct guesses with the top ``k`` called in and the bottom ``k`` called out.

    Ties are broken against the attacker (a tied score can never make a guess right by
    its position), so a constant scorer gets half right at best.
    """
    # Ascending by score; among equal scores included canaries first, so the lowest k
    # ("out") take included ones and the highest k ("in") take excluded ones: the worst case.
    order = np.lexsort(((~included).astype(int), scores))
    low, high = order[:k], order[::-1][:k]
    return int((~included[low]).sum() + included[high].sum())


def one_run_audit(
    scores: Mapping[str, Sequence[float] | np.ndarray],
    included: Sequence[bool] | np.ndarray,
    *,
    delta: float,
    confidence: float = 0.95,
    fractions: Sequence[float] = GUESS_FRACTIONS,
) -> AuditResult:
    """The largest ε lower bound over ``scores`` (attacker name -> a score per canary)."""
    truth = np.asarray(included, dtype=bool)
    m = int(truth.size)
    if m < 2 or not scores:
        raise ValueError("an audit needs at least 2 canaries and one attacker")
    ks = sorted({max(1, int(round(f * m / 2))) for f in fractions if f * m >= 2} or {1})
    tests = len(scores) * len(ks)
    beta = (1.0 - confidence) / tests
    best: tuple[float, str | None, int, int] = (0.0, None, 0, 0)
    per_attacker: dict[str, float] = {}
    for name, values in scores.items():
        s = np.asarray(values, dtype=np.float64)
        if s.shape != truth.shape:
            raise ValueError(f"attacker {name!r} scored {s.size} canaries, expected {m}")
        s = np.where(np.isfinite(s), s, 0.0)
        mine = 0.0
        for k in ks:
            v = _guess(s, truth, k)
            bound = epsilon_lower_bound(m, 2 * k, v, delta, beta=beta)
            mine = max(mine, bound)
            if bound > best[0]:
                best = (bound, name, 2 * k, v)
        per_attacker[name] = mine
    power = max(epsilon_lower_bound(m, 2 * k, 2 * k, delta, beta=beta) for k in ks)
    return AuditResult(
        epsilon_lower_bound=best[0],
        confidence=confidence,
        canaries=m,
        included=int(truth.sum()),
        attacker=best[1],
        guesses=best[2],
        correct=best[3],
        tests=tests,
        per_attacker=per_attacker,
        power=power,
    )


def verdict(lower_bound: float, claimed: float, power: float, *, control: bool) -> str:
    """``holds`` / ``VIOLATED`` for a product's mechanism; ``caught`` / ``missed`` for a control.

    A control is ``beyond power`` when even a perfect attacker could not certify more than
    its claim with these canaries.
    """
    above = lower_bound > claimed
    if not control:
        return "VIOLATED" if above else "holds"
    if above:
        return "caught"
    return "beyond power" if power <= claimed else "missed"
