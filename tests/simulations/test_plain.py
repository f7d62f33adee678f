"""The plain single-process loop: same client and server functions as a Flower round."""

from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from fedrec.client.state import ClientStateStore
from fedrec.shared.config import resolve_config
from fedrec.shared.data import load_split
from fedrec.shared.models.mf import init_shared
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
    shared = init_shared(split.n_items, 4, seed=0)
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
