"""Privacy in one place: the front door over record-level DP-SGD, user-level DP, accounting.

- :mod:`~fedrec.shared.privacy.random`: the randomness every guarantee rests on (a CSPRNG
  unless ``reproducible-noise`` asks for a seeded stream).
- :mod:`~fedrec.shared.privacy.record`: record-level DP-SGD on a client (Opacus' clipping
  and accountant, fedrec's noise and public normalisation, Poisson batches); its public
  shape (steps, rate, a round's plan) is :mod:`~fedrec.shared.privacy.plan`.
- :mod:`~fedrec.shared.privacy.user`: user-level primitives (clip a whole update, noise it,
  the share each party adds).
- :mod:`~fedrec.shared.privacy.accounting`: (ε, δ) of a history of Gaussian mechanisms, by
  RDP or PRV.
- :mod:`~fedrec.shared.privacy.report`: what each guarantee states about itself.
- :mod:`~fedrec.shared.privacy.calibrate`: the noise multiplier for a target ε.
- :mod:`~fedrec.shared.privacy.ledger`: a client's ledger as numbers (what it spent, its
  budgets); the client stores it (:mod:`fedrec.client.state`).
- :mod:`~fedrec.shared.privacy.audit`: empirical lower bounds on ε from canaries.
"""

from typing import TYPE_CHECKING, Any

from fedrec.shared.privacy.accounting import (
    RDP_ORDERS,
    Accounted,
    HistoryEntry,
    StepHistory,
    account,
    compress,
    default_delta,
    epsilon_of,
    history_of,
    make_accountant,
    resolve_delta,
)
from fedrec.shared.privacy.calibrate import (
    RecordCalibration,
    calibrate_record,
    calibrate_release,
    calibrate_user,
    record_epsilon,
    record_plans,
    release_epsilon,
    smallest_sigma,
    user_epsilon,
)
from fedrec.shared.privacy.ledger import (
    UserRound,
    check_record_budget,
    check_user_budget,
    ledger_epsilon,
    reported_user_epsilon,
    spend_user_round,
    user_round_for,
)
from fedrec.shared.privacy.plan import dp_plan, sample_rate, steps_per_epoch
from fedrec.shared.privacy.random import DPRandom, SecureRandom, SeededRandom, dp_random
from fedrec.shared.privacy.report import report_for, user_report
from fedrec.shared.privacy.user import (
    clip_update,
    gaussian_noise_like,
    noise_std,
    privatize,
    share_survivors,
    survivor_floor,
    update_norm,
)

if TYPE_CHECKING:
    from fedrec.shared.privacy.record import PoissonBatches, PrivateTraining, make_private

# DP-SGD's training machinery is Opacus' (torch, its grad samplers and optimizers): loaded
# when first asked for, so that accounting, ledgers and user-level noise come without it.
_TRAINING = ("PoissonBatches", "PrivateTraining", "make_private")


def __getattr__(name: str) -> Any:
    if name in _TRAINING:
        from fedrec.shared.privacy import record

        return getattr(record, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "RDP_ORDERS",
    "Accounted",
    "DPRandom",
    "HistoryEntry",
    "PoissonBatches",
    "PrivateTraining",
    "RecordCalibration",
    "SecureRandom",
    "SeededRandom",
    "StepHistory",
    "UserRound",
    "account",
    "calibrate_record",
    "calibrate_release",
    "calibrate_user",
    "check_record_budget",
    "check_user_budget",
    "clip_update",
    "compress",
    "default_delta",
    "dp_plan",
    "dp_random",
    "epsilon_of",
    "gaussian_noise_like",
    "history_of",
    "ledger_epsilon",
    "make_accountant",
    "make_private",
    "noise_std",
    "privatize",
    "record_epsilon",
    "record_plans",
    "release_epsilon",
    "report_for",
    "reported_user_epsilon",
    "resolve_delta",
    "sample_rate",
    "share_survivors",
    "smallest_sigma",
    "spend_user_round",
    "steps_per_epoch",
    "survivor_floor",
    "update_norm",
    "user_epsilon",
    "user_report",
    "user_round_for",
]
