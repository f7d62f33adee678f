"""The plain single-process loop: same client and server functions as a Flower round."""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedrec.client.state import ClientStateStore
from fedrec.client.task import load_client_data
from fedrec.shared.config import resolve_config
from fedrec.shared.data import load_split
from fedrec.shared.errors import ConfigError
from fedrec.shared.models.factory import init_global
from fedrec.simulations.plain import PlainFederation, sample_partitions
from tests.e2e.helpers import write_tiny_ratings


def _federation(tmp_path: Path, **extra: object) -> PlainFederation:
    data = write_tiny_ratings(tmp_path / "r.csv", n_users=6, n_items=20, per_user=8)
    cfg = resolve_config(
        {},
        {
            "dataset": "generic",
            "data-path": str(data),
            "embedding-dim": 4,
            "personalize-epochs": 1,
            **extra,
        },
    )
    _, split = load_split(cfg.data)
    shared = init_global(cfg, split.n_items)
    return PlainFederation(cfg, split.n_users, shared, tmp_path / "clients")


def test_rounds_update_the_model_and_client_states(tmp_path: Path) -> None:
    fed = _federation(tmp_path, **{"strategy": "fedadam", "server-learning-rate": 0.05})
    before = fed.shared["item_factors"].copy()
    for rnd in (1, 2):
        seconds = fed.train_round([0, 2, 4], rnd)
        assert seconds > 0
    assert not np.allclose(fed.shared["item_factors"], before)
    state = ClientStateStore(tmp_path / "clients" / "partition-2").load()
    assert state is not None and state.rounds_trained == [1, 2] and state.epsilon > 0
    assert ClientStateStore(tmp_path / "clients" / "partition-1").load() is None
    metrics = fed.evaluate()
    assert metrics["n_users"] == 6 and 0.0 <= metrics["ndcg@10_full"] <= 1.0


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 500), fraction=st.floats(0.001, 1.0), rnd=st.integers(0, 50))
def test_sample_is_seeded_distinct_and_sized(n: int, fraction: float, rnd: int) -> None:
    parts = sample_partitions(n, fraction, seed=3, rnd=rnd)
    assert parts == sample_partitions(n, fraction, seed=3, rnd=rnd)
    assert len(set(parts)) == len(parts) == max(1, int(n * fraction + 1e-9))
    assert all(0 <= p < n for p in parts)


def test_clients_with_one_to_three_interactions_train_under_dp(tmp_path: Path) -> None:
    # Users 0-2 have 1, 2 and 3 interactions (1 training record each); 3-5 have 8.
    rows = ["user,item,rating,timestamp"]
    counts = [1, 2, 3, 8, 8, 8]
    for u, n in enumerate(counts):
        rows += [f"{u},{(u * 5 + t) % 20},4,{t}" for t in range(n)]
    data = tmp_path / "few.csv"
    data.write_text("\n".join(rows) + "\n")
    cfg = resolve_config(
        {},
        {"dataset": "generic", "data-path": str(data), "embedding-dim": 4, "dp-sample-rate": 0.1},
    )
    _, split = load_split(cfg.data)
    fed = PlainFederation(cfg, split.n_users, init_global(cfg, split.n_items), tmp_path / "c")
    fed.train_round(list(range(6)), 1)
    assert np.all(np.isfinite(fed.shared["item_factors"]))
    owner = {int(load_client_data(cfg, k, 6).users[0]): k for k in range(6)}
    tiny = ClientStateStore(tmp_path / "c" / f"partition-{owner[0]}").load()
    big = ClientStateStore(tmp_path / "c" / f"partition-{owner[3]}").load()
    # One record: every DP step samples it with probability 1 (no amplification), and the
    # ledger says so -- such users dominate the reported maximum epsilon.
    assert tiny is not None and big is not None
    assert tiny.accountant_history[0][1] == 1.0
    assert tiny.epsilon > big.epsilon


@pytest.mark.parametrize("placement", ["local", "secagg"])
def test_the_plain_loop_refuses_client_side_user_level_dp(tmp_path: Path, placement: str) -> None:
    # Only the central placement runs in the plain loop (tests/simulations/test_privacy_bench.py).
    cfg = resolve_config({}, {"user-dp": placement})
    with pytest.raises(ConfigError, match="does not apply user-level DP"):
        PlainFederation(cfg, 2, {}, tmp_path)
