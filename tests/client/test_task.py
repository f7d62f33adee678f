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
        {}, {"dp-epsilon-budget": 5.0, "dp-noise-multiplier": 1.0, "dp-sample-rate": 0.1}
    )
    one_round = dp_plan(cfg.train, cfg.privacy)
    check_budget(cfg, _state([]), n_records=100)  # round 1: ~4.45 <= 5
    after_one = [one_round]
    assert epsilon_of([*after_one, one_round], 1e-5) > 5.0
    with pytest.raises(PrivacyBudgetExceeded, match=r"epsilon spent 4\.\d+.*> dp-epsilon-budget 5"):
        check_budget(cfg, _state(after_one), n_records=100)


def test_no_budget_or_no_dp_never_refuses() -> None:
    spent = [(1.0, 0.1, 10_000)]
    check_budget(resolve_config({}, {}), _state(spent), n_records=100)
    check_budget(
        resolve_config({}, {"dp-epsilon-budget": 1.0, "dp-enabled": False}),
        _state(spent),
        n_records=100,
    )


def test_users_added_to_a_node_get_fresh_factors_and_the_others_keep_theirs() -> None:
    from fedrec.client.dataview import ClientData
    from fedrec.client.task import user_factors_for

    cfg = resolve_config({}, {"embedding-dim": 4})
    empty = np.zeros(0, np.int64)
    data = ClientData(np.arange(2), empty, empty, [empty] * 2, [empty] * 2, np.array([-1, -1]), 5)
    saved = ClientState(user_factors=np.full((1, 4), 7.0, np.float32))
    grown = user_factors_for(cfg, data, saved, seed=3)
    assert grown.shape == (2, 4) and np.all(grown[0] == 7.0) and not np.all(grown[1] == 7.0)
    too_many = ClientState(user_factors=np.zeros((3, 4), np.float32))
    with pytest.raises(ValueError, match="belongs to other data or settings"):
        user_factors_for(cfg, data, too_many, seed=3)
