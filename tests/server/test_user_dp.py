"""Central user-level DP on the server, and the server's user-level account."""

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pytest
from flwr.app import ConfigRecord, Message, MetricRecord, RecordDict

from fedrec.server.aggregation import mean_of_sum, sum_updates
from fedrec.server.strategy import FedRecStrategy
from fedrec.server.user_dp import CentralNoise, UserLevelAccountant
from fedrec.shared.checkpoint import save_catalog, save_checkpoint
from fedrec.shared.config import resolve_config
from fedrec.shared.data.dataset import ItemCatalog
from fedrec.shared.privacy import SeededRandom, account, clip_update, update_norm
from fedrec.shared.serialization import arrays_to_numpy, numpy_to_arrays

pytestmark = pytest.mark.usefixtures("task_identity")  # see conftest.py


def _deltas(k: int, scale: float, seed: int = 0) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [
        {
            "item_factors": rng.normal(0, scale, (400, 5)).astype(np.float32),
            "item_bias": rng.normal(0, scale, 400).astype(np.float32),
        }
        for _ in range(k)
    ]


def test_central_noise_is_added_once_to_the_sum() -> None:
    # Ten clients with nothing to say: the noised sum is the noise, N(0, (σC)²) -- not ten
    # times that variance, as it would be if each update were noised.
    zeros = [{k: np.zeros_like(v) for k, v in d.items()} for d in _deltas(10, 1.0)]
    central = CentralNoise(clip=2.0, noise_multiplier=1.5, rng=SeededRandom(0))
    noise = np.concatenate([v.ravel() for v in central.noised_sum(zeros).values()])
    assert noise.std() == pytest.approx(3.0, rel=0.05)  # σC = 1.5 * 2, 2,400 coordinates
    assert np.count_nonzero(noise) == noise.size


def test_central_clips_every_update_before_summing() -> None:
    deltas = _deltas(4, 5.0)  # norms ~ 250 >> clip
    central = CentralNoise(clip=1.0, noise_multiplier=1.0, rng=SeededRandom(3))
    got = central.noised_sum(deltas)
    clipped = [clip_update(d, 1.0)[0] for d in deltas]
    assert all(update_norm(c) == pytest.approx(1.0, rel=1e-5) for c in clipped)
    replay = CentralNoise(clip=1.0, noise_multiplier=1.0, rng=SeededRandom(3))
    noise = replay.noised_sum([{k: np.zeros_like(v) for k, v in d.items()} for d in deltas])
    expected = sum_updates(clipped)
    for k in expected:
        np.testing.assert_allclose(got[k], expected[k] + noise[k], atol=1e-6)


class _Grid:
    def __init__(self, n: int) -> None:
        self.nodes = list(range(1, n + 1))

    def get_node_ids(self) -> Iterable[int]:
        return self.nodes


def test_central_strategy_averages_the_noised_sum_over_the_sampled_clients() -> None:
    deltas = _deltas(3, 2.0, seed=5)
    strategy = FedRecStrategy(
        fraction_train=1.0,
        fraction_evaluate=0.0,
        min_train_nodes=3,
        server_learning_rate=10.0,
        update_norm_factor=1.5,  # would reject; clipping replaces screening under DP
        central_noise=CentralNoise(1.0, 1.0, rng=SeededRandom(11)),
    )
    zero = {k: np.zeros_like(v) for k, v in deltas[0].items()}
    msgs = list(strategy.configure_train(1, numpy_to_arrays(zero), ConfigRecord({}), _Grid(3)))
    replies = [
        Message(
            RecordDict(
                {
                    "arrays": numpy_to_arrays(d),
                    "metrics": MetricRecord({"weight": 1.0, "epsilon": -1.0}),
                }
            ),
            reply_to=m,
        )
        for m, d in zip(msgs, deltas, strict=True)
    ]
    new, metrics = strategy.aggregate_train(1, replies)
    assert new is not None and metrics is not None
    expected = CentralNoise(1.0, 1.0, rng=SeededRandom(11)).noised_sum(deltas)
    got = arrays_to_numpy(new)
    for k in expected:
        np.testing.assert_allclose(got[k], 10.0 * expected[k] / 3, rtol=1e-5, atol=1e-5)
    assert metrics["clients-ok"] == 3 and metrics["clients-rejected"] == 0
    # Norms of raw updates would leak past the noise into the published history.
    assert "update-norm-median" not in metrics and "update-norm-max" not in metrics


def test_mean_of_sum_has_a_fixed_denominator() -> None:
    got = mean_of_sum({"a": np.array([6.0])}, 3)
    assert got["a"][0] == 2.0
    with pytest.raises(ValueError):
        mean_of_sum({"a": np.array([1.0])}, 0)


def test_accountant_uses_the_real_sampling_rate_and_fixes_delta() -> None:
    privacy = resolve_config({}, {"user-dp": "central", "user-noise-multiplier": 1.2}).privacy
    acc = UserLevelAccountant(privacy)
    assert acc.train_config(100)["user-delta"] == pytest.approx(100**-1.1)
    acc.fix_delta(5)  # later population changes do not move delta
    assert acc.delta == pytest.approx(100**-1.1)
    for _ in range(3):
        acc.record_round(sampled=10, available=100)
    acc.record_round(sampled=10, available=50)
    assert acc.history == [(1.2, 0.1, 3), (1.2, 0.2, 1)]
    report = acc.report()
    assert report is not None
    assert report["epsilon"] == account(acc.history, 100**-1.1, "rdp").epsilon
    assert report["epsilon_against_server"] is None  # central: the server sees raw updates


def test_accountant_resumes_from_the_latest_checkpoint(tmp_path: Path) -> None:
    privacy = resolve_config({}, {"user-dp": "local"}).privacy
    first = UserLevelAccountant(privacy)
    first.fix_delta(40)
    first.record_round(sampled=4, available=40)
    first.observe_clients(2.5)
    run_dir = tmp_path / "run"
    save_catalog(run_dir, ItemCatalog(raw_ids=["a"], titles=["A"], genres=[[]], texts=["A"]))
    save_checkpoint(
        run_dir,
        round=1,
        tensors={"item_factors": np.zeros((1, 2), np.float32)},
        run_name="run",
        kind="federated",
        config={},
        metrics={},
        history=[],
        privacy=None,
        user_privacy=first.report(),
    )
    resumed = UserLevelAccountant.for_run(privacy, run_dir)
    assert resumed.history == [(1.0, 0.1, 1)] and resumed.delta == first.delta
    assert resumed.epsilon_against_server == 2.5
    resumed.record_round(sampled=4, available=40)
    assert resumed.history == [(1.0, 0.1, 2)]
    assert UserLevelAccountant.for_run(privacy, tmp_path / "fresh").history == []
