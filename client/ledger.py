"""The client's user-level privacy ledger: what its own noise has spent, and its budget.

With ``user-dp = local`` or ``secagg`` every round a client takes part in releases its
clipped update under Gaussian noise of multiplier σ (all of it added by the client, or its
share of a secure sum that carries all of it). Against the server, which knows which rounds
a client took part in, each such round is one Gaussian mechanism: no amplification by
sampling. The ledger keeps one ``(σ, 1.0, rounds)`` history per placement in the client's
state (:mod:`fedrec.client.state`), is written before the update leaves the client, and is
never rolled back (a discarded round's update may have been seen).

Central noise is added by the server; a client cannot check it, so it is not in the ledger.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from fedrec.client.state import ClientState
from fedrec.shared.config import PrivacyConfig
from fedrec.shared.errors import PrivacyBudgetExceeded
from fedrec.shared.privacy import HistoryEntry, account, compress

LEDGER_PLACEMENTS = ("local", "secagg")


@dataclass(frozen=True)
class UserRound:
    """The user-level noise one training round of this client gets."""

    placement: str  # local | secagg
    noise_multiplier: float
    delta: float  # the run's user-level delta (sent by the server)
    accountant: str  # rdp | prv
    budget: float = 0.0  # user-epsilon-budget; 0: none

    @property
    def entry(self) -> HistoryEntry:
        """The ledger entry of one round: a Gaussian mechanism, no sampling."""
        return (self.noise_multiplier, 1.0, 1)


def user_round_for(privacy: PrivacyConfig, delta: float) -> UserRound | None:
    """The round's ledger entry for ``privacy``; ``None`` when the client adds no noise."""
    if privacy.user_dp not in LEDGER_PLACEMENTS:
        return None
    return UserRound(
        placement=privacy.user_dp,
        noise_multiplier=privacy.user_noise_multiplier,
        delta=delta,
        accountant=privacy.accountant,
        budget=privacy.user_epsilon_budget,
    )


def _all(ledger: Mapping[str, Sequence[HistoryEntry]]) -> list[HistoryEntry]:
    return [h for placement in sorted(ledger) for h in ledger[placement]]


def user_epsilon(ledger: Mapping[str, Sequence[HistoryEntry]], rnd: UserRound) -> float:
    """Epsilon of every user-level round in ``ledger`` composed, at the round's delta."""
    return account(_all(ledger), rnd.delta, rnd.accountant).epsilon


def check_user_budget(state: ClientState, rnd: UserRound) -> None:
    """Refuse (raise) a round that would take the user-level epsilon over the budget."""
    if rnd.budget <= 0:
        return
    ledger = {k: list(v) for k, v in state.user_ledger.items()}
    spent = user_epsilon(ledger, rnd)
    ledger.setdefault(rnd.placement, []).append(rnd.entry)
    planned = user_epsilon(ledger, rnd)
    if planned > rnd.budget:
        raise PrivacyBudgetExceeded(
            f"user-level privacy budget reached: epsilon spent {spent:.3f}, another round "
            f"would make it {planned:.3f} > user-epsilon-budget {rnd.budget:g} (delta "
            f"{rnd.delta:.3g}, per user, {rnd.placement} noise, accountant "
            f"{rnd.accountant}); this client no longer trains"
        )


def spend(state: ClientState, rnd: UserRound) -> ClientState:
    """``state`` with one more round of ``rnd`` in its user-level ledger (a new object)."""
    ledger = {k: list(v) for k, v in state.user_ledger.items()}
    ledger[rnd.placement] = compress([*ledger.get(rnd.placement, []), rnd.entry])
    epsilons = {
        placement: account(history, rnd.delta, rnd.accountant).epsilon
        for placement, history in ledger.items()
    }
    if len(ledger) > 1:
        epsilons["total"] = user_epsilon(ledger, rnd)
    return replace(state, user_ledger=ledger, user_epsilon=epsilons, user_delta=rnd.delta)


def total_user_epsilon(state: ClientState | None) -> float:
    """The user-level epsilon the state's ledger reports (0 without one)."""
    if state is None or not state.user_epsilon:
        return 0.0
    return float(state.user_epsilon.get("total", max(state.user_epsilon.values())))
