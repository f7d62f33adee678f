"""What a client's private state holds: its user factors, its ledgers, its rounds.

The record and its (de)serialisation; where and how it is stored, sealed and checked is
:mod:`fedrec.client.state`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from fedrec.shared.errors import FedRecError
from fedrec.shared.privacy import HistoryEntry, UserRound, reported_user_epsilon, spend_user_round


class ClientStateError(FedRecError):
    """A client's saved state cannot be used for the round the server asks for."""


@dataclass
class ClientState:
    """Private per-client state kept between rounds.

    ``discarded_rounds`` lists training rounds whose result was thrown away because the
    server never checkpointed them (it restarted and ran the round again); their DP steps
    stay in ``accountant_history`` and ``epsilon`` (see :meth:`ClientStateStore.start_round`).
    ``incarnation`` is the token of the server process ``last_round`` was trained for
    (``None``: trained for a server that sent none, or never trained).

    The privacy ledger, one entry per mechanism: ``accountant_history`` / ``epsilon`` for
    record-level DP-SGD (unit: one interaction), ``user_ledger`` / ``user_epsilon`` for
    user-level noise (unit: the user; keyed by placement, ``local`` or ``secagg``; one
    ``(noise_multiplier, 1.0, rounds)`` entry per run of rounds, since the server knows
    which rounds a client took part in), at ``user_delta``.
    """

    user_factors: np.ndarray  # float32 [n_local_users, dim]
    accountant_history: list[HistoryEntry] = field(default_factory=list)
    rounds_trained: list[int] = field(default_factory=list)
    epsilon: float = 0.0
    discarded_rounds: list[int] = field(default_factory=list)
    incarnation: str | None = None
    user_ledger: dict[str, list[HistoryEntry]] = field(default_factory=dict)
    user_epsilon: dict[str, float] = field(default_factory=dict)
    user_delta: float = 0.0
    run_id: str | None = None  # the run (server's RUN_ID) this state belongs to
    # [start, end) spans of the co-occurrence release already sent (client/cooccurrence.py)
    released: list[tuple[int, int]] = field(default_factory=list)

    @property
    def last_round(self) -> int | None:
        """The latest round this state has trained, or ``None``."""
        return self.rounds_trained[-1] if self.rounds_trained else None

    @property
    def reported_user_epsilon(self) -> float:
        """The user-level epsilon this state's ledger reports (0 without one)."""
        return reported_user_epsilon(self.user_epsilon)

    def to_dict(self) -> dict[str, Any]:
        """Everything but the factors, as JSON-ready values (for people and tools)."""
        return state_meta(self)

    def spend(self, rnd: UserRound) -> ClientState:
        """A copy with one more user-level round of ``rnd`` in its ledger."""
        ledger, epsilons = spend_user_round(self.user_ledger, rnd)
        return replace(self, user_ledger=ledger, user_epsilon=epsilons, user_delta=rnd.delta)


def state_meta(state: ClientState) -> dict[str, Any]:
    """``state`` without its factors, as JSON-ready values (what the sealed header holds)."""
    return {
        "accountant_history": [list(h) for h in state.accountant_history],
        "rounds_trained": list(state.rounds_trained),
        "epsilon": state.epsilon,
        "discarded_rounds": list(state.discarded_rounds),
        "incarnation": state.incarnation,
        "user_ledger": {k: [list(h) for h in v] for k, v in state.user_ledger.items()},
        "user_epsilon": dict(state.user_epsilon),
        "user_delta": state.user_delta,
        "run_id": state.run_id,
        "released": [list(span) for span in state.released],
    }


def state_from(factors: np.ndarray, meta: dict[str, Any]) -> ClientState:
    """The state of ``factors`` and the metadata :func:`state_meta` wrote."""
    return ClientState(
        user_factors=factors,
        accountant_history=[tuple(h) for h in meta["accountant_history"]],  # type: ignore[misc]
        rounds_trained=[int(r) for r in meta["rounds_trained"]],
        epsilon=float(meta["epsilon"]),
        discarded_rounds=[int(r) for r in meta.get("discarded_rounds", [])],
        incarnation=meta.get("incarnation"),
        user_ledger={
            k: [(float(s), float(q), int(n)) for s, q, n in v]
            for k, v in meta.get("user_ledger", {}).items()
        },
        user_epsilon={k: float(v) for k, v in meta.get("user_epsilon", {}).items()},
        user_delta=float(meta.get("user_delta", 0.0)),
        run_id=meta.get("run_id"),
        released=[(int(a), int(b)) for a, b in meta.get("released", [])],
    )
