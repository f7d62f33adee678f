"""A client's privacy ledger, as numbers: what its releases spent, and its budgets.

Two mechanisms leave a client, each with its own unit and entry in the ledger:

- **Record level** (DP-SGD): a history of ``(σ, q, steps)`` entries, one accountant for
  the whole run; :func:`check_record_budget` refuses a round that would pass
  ``dp-epsilon-budget``.
- **User level** with ``user-dp = local`` or ``secagg``: every round the client takes part
  in releases its clipped update under Gaussian noise of multiplier σ (all of it added by
  the client, or its share of a secure sum that carries all of it). Against the server,
  which knows which rounds a client took part in, each round is one Gaussian mechanism: no
  amplification by sampling. One ``(σ, 1.0, rounds)`` history per placement;
  :func:`check_user_budget` refuses a round past ``user-epsilon-budget`` and
  :func:`spend_user_round` adds one. Central noise is added by the server; a client cannot
  check it, so it has no entry here.

The ledger itself is stored by the client (:mod:`fedrec.client.state`), written before an
update leaves the client and never rolled back (a discarded round's update may have been
seen). This module only computes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from fedrec.shared.config import PrivacyConfig, TrainConfig
from fedrec.shared.errors import PrivacyBudgetExceeded
from fedrec.shared.privacy.accounting import HistoryEntry, account, compress, epsilon_of
from fedrec.shared.privacy.plan import dp_plan

LEDGER_PLACEMENTS = ("local", "secagg")

Ledger = Mapping[str, Sequence[HistoryEntry]]


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
        accountant=privacy.user_accountant,
        budget=privacy.user_epsilon_budget,
    )


def _all(ledger: Ledger) -> list[HistoryEntry]:
    return [h for placement in sorted(ledger) for h in ledger[placement]]


def ledger_epsilon(ledger: Ledger, rnd: UserRound) -> float:
    """Epsilon of every user-level round in ``ledger`` composed, at the round's delta."""
    return account(_all(ledger), rnd.delta, rnd.accountant).epsilon


def check_user_budget(ledger: Ledger, rnd: UserRound) -> None:
    """Refuse (raise) a round that would take the user-level epsilon over the budget."""
    if rnd.budget <= 0:
        return
    planned_ledger = {k: list(v) for k, v in ledger.items()}
    spent = ledger_epsilon(planned_ledger, rnd)
    planned_ledger.setdefault(rnd.placement, []).append(rnd.entry)
    planned = ledger_epsilon(planned_ledger, rnd)
    if planned > rnd.budget:
        raise PrivacyBudgetExceeded(
            f"user-level privacy budget reached: epsilon spent {spent:.3f}, another round "
            f"would make it {planned:.3f} > user-epsilon-budget {rnd.budget:g} (delta "
            f"{rnd.delta:.3g}, per user, {rnd.placement} noise, accountant "
            f"{rnd.accountant}); this client no longer trains"
        )


def spend_user_round(
    ledger: Ledger, rnd: UserRound
) -> tuple[dict[str, list[HistoryEntry]], dict[str, float]]:
    """``ledger`` with one more round of ``rnd``, and the epsilon of each placement.

    With more than one placement in the ledger the epsilons also hold their composition,
    under ``"total"``.
    """
    spent = {k: list(v) for k, v in ledger.items()}
    spent[rnd.placement] = compress([*spent.get(rnd.placement, []), rnd.entry])
    epsilons = {
        placement: account(history, rnd.delta, rnd.accountant).epsilon
        for placement, history in spent.items()
    }
    if len(spent) > 1:
        epsilons["total"] = ledger_epsilon(spent, rnd)
    return spent, epsilons


def reported_user_epsilon(epsilons: Mapping[str, float]) -> float:
    """The user-level epsilon a client reports: the composition, or its one placement's."""
    if not epsilons:
        return 0.0
    return float(epsilons.get("total", max(epsilons.values())))


def check_record_budget(
    history: Sequence[HistoryEntry], train: TrainConfig, privacy: PrivacyConfig
) -> None:
    """Refuse (raise) before training a round that would take epsilon over the budget."""
    budget = privacy.dp_epsilon_budget
    if not privacy.dp_enabled or budget <= 0:
        return
    delta = privacy.dp_delta
    planned = epsilon_of([*history, dp_plan(train, privacy)], delta)
    if planned > budget:
        raise PrivacyBudgetExceeded(
            f"privacy budget reached: epsilon spent {epsilon_of(list(history), delta):.3f}, "
            f"another round would make it {planned:.3f} > dp-epsilon-budget {budget:g} (delta "
            f"{delta:g}, per record); this client no longer trains"
        )
