"""The client's user-level ledger: spent per mechanism, persisted, never rolled back, and
a round past the user-level budget refused with the reason."""

import numpy as np
import pytest
from flwr.app import ConfigRecord

from fedrec.client.message_config import user_round_of
from fedrec.client.state import ClientState, ClientStateStore
from fedrec.shared.config import resolve_config
from fedrec.shared.errors import PrivacyBudgetExceeded
from fedrec.shared.privacy import UserRound, account, check_user_budget, user_round_for


def _state(rounds: list[int]) -> ClientState:
    return ClientState(
        user_factors=np.zeros((1, 4), np.float32),
        accountant_history=[(1.0, 0.1, 20)],
        rounds_trained=rounds,
        epsilon=4.4,
    )


ROUND = UserRound(placement="local", noise_multiplier=1.0, delta=1e-3, accountant="rdp", budget=5.0)


def test_spending_records_each_round_per_mechanism() -> None:
    state = _state([1, 2]).spend(ROUND).spend(ROUND)
    assert state.user_ledger == {"local": [(1.0, 1.0, 2)]}
    assert state.user_epsilon["local"] == account([(1.0, 1.0, 2)], 1e-3, "rdp").epsilon
    assert state.user_delta == 1e-3
    # The record-level entry is its own mechanism and stays as it was.
    assert state.accountant_history == [(1.0, 0.1, 20)] and state.epsilon == 4.4
    assert state.reported_user_epsilon == state.user_epsilon["local"]


def test_a_round_past_the_user_budget_is_refused_with_the_reason() -> None:
    # At σ = 1 and δ = 1e-3 one round costs ε ≈ 3.55, two ≈ 5.43 > 5.
    once = _state([1]).spend(ROUND)
    check_user_budget(_state([]).user_ledger, ROUND)
    with pytest.raises(PrivacyBudgetExceeded, match=r"user-level .*spent 3\.55.*5\.4\d+ > user-"):
        check_user_budget(once.user_ledger, ROUND)
    no_budget = UserRound("local", 1.0, 1e-3, "rdp", budget=0.0)
    check_user_budget(once.user_ledger, no_budget)


def test_mechanisms_compose_in_the_budget() -> None:
    secagg = UserRound("secagg", 1.0, 1e-3, "rdp", budget=6.5)
    state = _state([1]).spend(ROUND).spend(secagg)
    assert set(state.user_epsilon) == {"local", "secagg", "total"}
    assert state.user_epsilon["total"] == pytest.approx(
        account([(1.0, 1.0, 2)], 1e-3, "rdp").epsilon
    )
    with pytest.raises(PrivacyBudgetExceeded):
        check_user_budget(state.user_ledger, secagg)  # a third round: ε ≈ 7.0 > 6.5


def test_the_ledger_is_persisted_and_survives_a_rollback(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = ClientStateStore(tmp_path / "c")
    before = _state([1]).spend(ROUND)
    after = _state([1, 2]).spend(ROUND)
    after = after.spend(ROUND)  # two user-level rounds by now
    store.save(after, previous=before)
    loaded = store.load()
    assert loaded is not None and loaded.user_ledger == after.user_ledger
    # The server lost round 2 and asks for it again: factors roll back, the ledger does not
    # (the lost round's update may have been seen).
    start = store.start_round(2)
    assert start is not None and start.rounds_trained == [1]
    assert start.user_ledger == after.user_ledger and start.user_epsilon == after.user_epsilon


def test_the_round_uses_the_runs_delta_from_the_server() -> None:
    cfg = resolve_config({}, {"user-dp": "secagg", "user-epsilon-budget": 3.0})
    rnd = user_round_of(cfg, ConfigRecord({"user-delta": 2e-4}), num_partitions=10)
    assert rnd == UserRound("secagg", 1.0, 2e-4, "rdp", budget=3.0)
    fallback = user_round_of(cfg, ConfigRecord({}), num_partitions=10)
    assert fallback is not None and fallback.delta == pytest.approx(10**-1.1)
    # Central noise is the server's: the client has nothing to put in its ledger.
    assert user_round_for(resolve_config({}, {"user-dp": "central"}).privacy, 1e-3) is None
    assert user_round_for(resolve_config({}, {}).privacy, 1e-3) is None
