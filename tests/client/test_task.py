"""A client refuses to train once its privacy budget would be exceeded, and says why."""

import numpy as np
import pytest

from fedrec.client.state import ClientState
from fedrec.client.task import check_budget
from fedrec.shared.config import resolve_config
from fedrec.shared.errors import PrivacyBudgetExceeded
from fedrec.shared.privacy import dp_plan, epsilon_of


def _state(history: list[tuple[float, float, int]]) -> ClientState:
    return ClientState(user_factors=np.zeros((1, 4), np.float32), accountant_history=history)


def test_refuses_the_round_that_would_cross_the_budget() -> None:
    cfg = resolve_config(
        {}, {"epsilon-budget": 5.0, "noise-multiplier": 1.0, "dp-sample-rate": 0.1}
    )
    one_round = dp_plan(cfg.train, cfg.privacy)
    check_budget(cfg, _state([]), n_records=100)  # round 1: ~4.45 <= 5
    after_one = [one_round]
    assert epsilon_of([*after_one, one_round], 1e-5) > 5.0
    with pytest.raises(PrivacyBudgetExceeded, match=r"epsilon spent 4\.\d+.*> epsilon-budget 5"):
        check_budget(cfg, _state(after_one), n_records=100)


def test_no_budget_or_no_dp_never_refuses() -> None:
    spent = [(1.0, 0.1, 10_000)]
    check_budget(resolve_config({}, {}), _state(spent), n_records=100)
    check_budget(
        resolve_config({}, {"epsilon-budget": 1.0, "dp-enabled": False}),
        _state(spent),
        n_records=100,
    )
