"""The plain single-process loop: same client and server functions as a Flower round."""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedrec.client.client_app import build_client_app
from fedrec.client.dataview import load_client_data
from fedrec.client.replies import noised_update
from fedrec.client.state import ClientStateStore
from fedrec.server.secagg import (
    clipping_range,
    quantization_levels,
    secagg_threshold,
    unmasked_secure_sum,
)
from fedrec.server.server_app import run_federation
from fedrec.shared.checkpoint import load_checkpoint
from fedrec.shared.config import resolve_config
from fedrec.shared.data import load_split
from fedrec.shared.models.initial import init_global
from fedrec.simulation.plain_loop import PlainLoop, sample_partitions
from tests.e2e.helpers import write_tiny_ratings


def _federation(tmp_path: Path, **extra: object) -> PlainLoop:
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
    return PlainLoop(cfg, split.n_users, shared, tmp_path / "clients")


def test_rounds_update_the_model_and_client_states(tmp_path: Path) -> None:
    fed = _federation(tmp_path, **{"strategy": "fedadam", "server-learning-rate": 0.05})
    before = fed.global_tensors["item_factors"].copy()
    for rnd in (1, 2):
        seconds = fed.train_round([0, 2, 4], rnd)
        assert seconds > 0
    assert not np.allclose(fed.global_tensors["item_factors"], before)
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
    fed = PlainLoop(cfg, split.n_users, init_global(cfg, split.n_items), tmp_path / "c")
    fed.train_round(list(range(6)), 1)
    assert np.all(np.isfinite(fed.global_tensors["item_factors"]))
    owner = {int(load_client_data(cfg, k, 6).users[0]): k for k in range(6)}
    tiny = ClientStateStore(tmp_path / "c" / f"partition-{owner[0]}").load()
    big = ClientStateStore(tmp_path / "c" / f"partition-{owner[3]}").load()
    # Regression: the plan (rate, steps) followed the record count, so a one-record client
    # sampled its record in every step and its epsilon (and reply) revealed that. Now every
    # client runs the public plan, whatever it holds.
    assert tiny is not None and big is not None
    assert tiny.accountant_history == big.accountant_history == [(1.0 * 2.1, 0.1, 20)]
    assert tiny.epsilon == big.epsilon


@pytest.mark.parametrize("placement", ["local", "secagg"])
def test_client_side_user_dp_noises_every_update_and_keeps_the_ledgers(
    tmp_path: Path, placement: str
) -> None:
    privacy = {"user-dp": placement, "user-clip": 0.5, "user-noise-multiplier": 2.0}
    fed = _federation(tmp_path, **{"dp-enabled": False, "text-tower": "off", **privacy})
    before = {k: v.copy() for k, v in fed.global_tensors.items()}
    fed.train_round(list(range(6)), 1)
    # Every coordinate moved (dense noise, also on the items nobody trained).
    for k, v in fed.global_tensors.items():
        assert np.all(v != before[k]), k
    for pid in range(6):
        state = ClientStateStore(tmp_path / "clients" / f"partition-{pid}").load()
        assert state is not None and placement in state.user_ledger
        assert state.user_epsilon[placement] > 0
    report = fed.user_privacy()
    assert report is not None and report["placement"] == placement and report["epsilon"] > 0


@pytest.mark.parametrize(("placement", "survivors"), [("local", 1), ("secagg", 4)])
def test_a_clients_noise_is_all_of_it_locally_and_its_share_under_secagg(
    tmp_path: Path, placement: str, survivors: int
) -> None:
    # 6 sampled clients, threshold round(0.7 x 6) = 4: a share is σC/2.
    privacy = {"user-dp": placement, "user-clip": 0.5, "user-noise-multiplier": 2.0}
    fed = _federation(tmp_path, **privacy)
    zero = {"x": np.zeros(200_000, np.float32)}
    # What the plain loop hands each of 6 sampled clients: the workflow's threshold.
    threshold = secagg_threshold(fed.cfg.privacy, 6) if placement == "secagg" else None
    assert threshold in (None, survivors)
    noise = noised_update(fed.cfg, zero, zero, survivors=threshold)["x"]
    assert noise.std() == pytest.approx(2.0 * 0.5 / np.sqrt(survivors), rel=0.02)


@settings(max_examples=20, deadline=None)
@given(n=st.integers(2, 40), seed=st.integers(0, 1000))
def test_the_unmasked_secure_sum_is_the_sum_up_to_quantization(n: int, seed: int) -> None:
    privacy = resolve_config({}, {"user-dp": "secagg"}).privacy
    rng = np.random.default_rng(seed)
    vectors = [{"a": rng.normal(0, 1, (5, 3)).astype(np.float32)} for _ in range(n)]
    total = unmasked_secure_sum(vectors, privacy)["a"]
    exact = np.sum([v["a"].astype(np.float64) for v in vectors], axis=0)
    step = 2 * clipping_range(privacy) / quantization_levels(n)
    # Stochastic rounding moves each value by less than one level.
    assert np.all(np.abs(total - exact) <= n * step + 1e-9)


@pytest.mark.parametrize(
    ("user_dp", "dp", "text"),
    [
        ("off", False, "off"),
        ("local", False, "off"),
        # DP-SGD: the plain loop trains the round's clients as one batched cohort
        # (shared/cohort_training.py), the Flower apps one by one through Opacus.
        ("off", True, "off"),
        ("local", True, "heads"),
    ],
)
def test_the_plain_loop_and_the_flower_apps_reach_the_same_model(
    tmp_path: Path, loopback_grid: type, user_dp: str, dp: bool, text: str
) -> None:
    # Prepare: one seeded federation, run by both drivers (noise seeded where there is any).
    data = write_tiny_ratings(tmp_path / "r.csv", n_users=5, n_items=20, per_user=8)
    settings = {
        "dataset": "generic",
        "data-path": str(data),
        "embedding-dim": 4,
        "text-tower": text,
        "dp-enabled": dp,
        "user-dp": user_dp,
        "reproducible-noise": True,
        "num-rounds": 2,
        "fraction-evaluate": 0.0,
        "final-evaluate-all": False,
        "output-dir": str(tmp_path / "runs"),
    }
    cfg = resolve_config({}, settings)
    _, split = load_split(cfg.data)
    # Execute
    grid = loopback_grid(build_client_app(settings), split.n_users, node_config=True)
    run_dir = run_federation(grid, cfg)
    fed = PlainLoop(cfg, split.n_users, init_global(cfg, split.n_items), tmp_path / "plain")
    for rnd in (1, 2):
        fed.train_round(list(range(split.n_users)), rnd)
    # Assert: the same global model and the same round metrics.
    flower = load_checkpoint(run_dir)
    for name, value in fed.global_tensors.items():
        np.testing.assert_allclose(flower.tensors[name], value, rtol=1e-6, atol=1e-7)
    last = flower.manifest["history"][-1]
    for key in ("clients-ok", "clients-rejected", "clients-sampled", "update-norm-median"):
        if key in fed.last_metrics:
            assert last[key] == pytest.approx(fed.last_metrics[key]), key
    if user_dp != "off":
        assert last["user-epsilon"] == pytest.approx(fed.user_privacy()["epsilon"])  # type: ignore[index]
