"""Server-side aggregation: robust combiners, norm bounding and server optimizers."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from fedrec.server.aggregation import (
    LazyDeltas,
    ServerAdaptive,
    ServerSGD,
    bound_updates,
    combine,
    make_server_optimizer,
    update_norm,
)


def _d(value: float, shape: tuple[int, ...] = (3, 2)) -> dict[str, np.ndarray]:
    return {"item_factors": np.full(shape, value, np.float32), "item_bias": np.full(3, value)}


def test_combiners_on_a_hand_computed_case() -> None:
    deltas = [_d(v) for v in (1.0, 2.0, 3.0, 4.0, 100.0)]
    assert np.allclose(combine(deltas, "mean")["item_factors"], 22.0)
    assert np.allclose(combine(deltas, "median")["item_factors"], 3.0)
    # trim 20% of 5 = 1 at each end: mean of 2, 3, 4.
    assert np.allclose(combine(deltas, "trimmed-mean", 0.2)["item_bias"], 3.0)


@settings(max_examples=40, deadline=None)
@given(
    stack=arrays(
        np.float64,
        st.tuples(st.integers(1, 9), st.integers(1, 4)),
        elements=st.floats(-1e3, 1e3),
    ),
    method=st.sampled_from(["mean", "median", "trimmed-mean"]),
    trim=st.floats(0.0, 0.49),
)
def test_combined_value_lies_within_the_clients_values(
    stack: np.ndarray, method: str, trim: float
) -> None:
    deltas = [{"w": row} for row in stack]
    got = combine(deltas, method, trim)["w"]
    assert np.all(got >= stack.min(axis=0) - 1e-9) and np.all(got <= stack.max(axis=0) + 1e-9)


@pytest.mark.parametrize("method", ["median", "trimmed-mean"])
def test_one_malicious_client_cannot_move_the_model_much(method: str) -> None:
    rng = np.random.default_rng(0)
    honest = [{"w": rng.normal(0, 0.01, size=50)} for _ in range(19)]
    attack = {"w": np.full(50, 1e6)}
    robust = combine([*honest, attack], method, 0.1)["w"]
    clean = combine(honest, "mean")["w"]
    assert np.abs(robust - clean).max() < 0.05
    # The plain mean is moved by the attacker: the test above would fail for it.
    assert np.abs(combine([*honest, attack], "mean")["w"] - clean).max() > 1e4


def test_norms_far_above_the_median_are_bounded_not_dropped() -> None:
    deltas = [_d(1.0), _d(1.2), _d(0.9), _d(50.0)]
    bounded, norms, scaled = bound_updates(deltas, factor=10.0)
    assert scaled == [3] and len(bounded) == 4
    assert norms[3] == pytest.approx(update_norm(_d(50.0)))
    median = float(np.median(norms))
    assert update_norm(bounded[3]) == pytest.approx(10.0 * median)
    # the direction is kept: a heavy user still pulls the model its way
    np.testing.assert_allclose(
        bounded[3]["item_factors"] / np.linalg.norm(bounded[3]["item_factors"]),
        deltas[3]["item_factors"] / np.linalg.norm(deltas[3]["item_factors"]),
    )
    assert bounded[:3] == deltas[:3]
    assert bound_updates(deltas, factor=0.0)[2] == []
    assert bound_updates([deltas[0], deltas[3]], factor=10.0)[2] == []  # < 3: no median


def test_an_honest_heavy_user_counts_in_the_average() -> None:
    # 1,000 ratings against 20 for the others: an update about 50x the median, honest.
    light = [_d(0.02 * (1 + 0.1 * i)) for i in range(9)]
    heavy = _d(1.0)
    bounded, _, scaled = bound_updates([*light, heavy], factor=20.0)
    assert scaled == [9]
    with_heavy = combine(bounded, "mean")["item_factors"]
    without = combine(light, "mean")["item_factors"]
    assert np.all(with_heavy > without)  # it moved the model, bounded


def test_fedavg_and_momentum_steps() -> None:
    x = {"w": np.zeros(2, np.float32)}
    assert np.allclose(ServerSGD(2.0).step(x, {"w": np.ones(2)})["w"], 2.0)
    opt = ServerSGD(1.0, momentum=0.5)
    x1 = opt.step(x, {"w": np.ones(2)})  # v = 1
    x2 = opt.step(x1, {"w": np.ones(2)})  # v = 1.5
    assert np.allclose(x2["w"], 2.5)


@pytest.mark.parametrize("yogi", [False, True])
def test_adaptive_first_step_matches_the_formula(yogi: bool) -> None:
    tau, b1, b2, lr = 1e-3, 0.9, 0.99, 0.1
    d = np.array([0.5, -2.0])
    got = ServerAdaptive(lr, yogi=yogi, beta1=b1, beta2=b2, tau=tau).step(
        {"w": np.zeros(2, np.float32)}, {"w": d}
    )["w"]
    m = (1 - b1) * d
    v0 = tau**2
    v = v0 - (1 - b2) * d**2 * np.sign(v0 - d**2) if yogi else b2 * v0 + (1 - b2) * d**2
    assert np.allclose(got, lr * m / (np.sqrt(v) + tau), rtol=1e-5)
    # Adam's step is sign-like: per-coordinate magnitudes comparable despite a 4x gap in d.
    assert abs(got[1]) / abs(got[0]) < 2.0


@pytest.mark.parametrize("name", ["fedavg", "fedavgm", "fedadam", "fedyogi"])
def test_optimizer_state_survives_a_restart(name: str) -> None:
    rng = np.random.default_rng(1)
    steps = [{"w": rng.normal(size=4)} for _ in range(3)]

    def fresh():  # type: ignore[no-untyped-def]
        return make_server_optimizer(name, lr=0.5, momentum=0.9, beta2=0.99, tau=1e-3)

    straight, x = fresh(), {"w": np.zeros(4, np.float32)}
    for d in steps:
        x = straight.step(x, d)
    first, y = fresh(), {"w": np.zeros(4, np.float32)}
    for d in steps[:2]:
        y = first.step(y, d)
    resumed = fresh()
    resumed.load_state_dict(first.state_dict())
    y = resumed.step(y, steps[2])
    assert np.allclose(x["w"], y["w"], atol=1e-6)


def test_unknown_names_are_errors() -> None:
    with pytest.raises(ValueError, match="strategy must be one of"):
        make_server_optimizer("fedsgd", lr=1, momentum=0, beta2=0.9, tau=1e-3)
    with pytest.raises(ValueError, match="aggregation must be one of"):
        combine([_d(1.0)], "mode")


def test_dense_tensors_get_their_own_server_learning_rate() -> None:
    # The item table's averaged delta is diluted by clients that never touched a row; the
    # text heads are updated by every client, so a large server rate would blow them up.
    from fedrec.server.aggregation import make_server_optimizer

    params = {"item_factors": np.zeros(2), "text.user_head.weight": np.zeros(2)}
    delta = {"item_factors": np.ones(2), "text.user_head.weight": np.ones(2)}
    for strategy in ("fedavg", "fedavgm"):
        opt = make_server_optimizer(
            strategy, lr=100.0, momentum=0.0, beta2=0.99, tau=1e-3, dense_lr=1.0
        )
        out = opt.step(params, delta)
        np.testing.assert_allclose(out["item_factors"], 100.0)
        np.testing.assert_allclose(out["text.user_head.weight"], 1.0)
    same = make_server_optimizer("fedavg", lr=3.0, momentum=0.0, beta2=0.99, tau=1e-3)
    np.testing.assert_allclose(same.step(params, delta)["text.user_head.weight"], 3.0)


def _reference_round(deltas: list[dict[str, np.ndarray]], factor: float) -> dict[str, np.ndarray]:
    """The round's combined update as a list of scaled copies summed name by name."""
    norms = [update_norm(d) for d in deltas]
    bound = factor * float(np.median(norms))
    scaled = [
        {k: np.asarray(v, np.float64) * (bound / n) for k, v in d.items()} if n > bound else d
        for d, n in zip(deltas, norms, strict=True)
    ]
    out = {}
    for name in deltas[0]:
        total = np.zeros(np.shape(deltas[0][name]), np.float64)
        for d in scaled:
            total += d[name]
        out[name] = total / len(deltas)
    return out


def test_deltas_read_one_at_a_time_give_the_batch_round_bit_for_bit() -> None:
    rng = np.random.default_rng(3)
    deltas = [
        {"item_factors": rng.standard_normal((7, 3)).astype(np.float32) * s, "item_bias": b}
        for s, b in zip([1.0, 0.8, 1.3, 40.0, 0.9], rng.standard_normal((5, 7)), strict=True)
    ]
    reads: list[int] = []

    def read(i: int) -> dict[str, np.ndarray]:
        reads.append(i)
        return deltas[i]

    lazy = LazyDeltas(len(deltas), read)
    bounded, norms, scaled = bound_updates(lazy, factor=10.0)
    got = combine(bounded, "mean")
    assert scaled == [3]
    expected = _reference_round(deltas, 10.0)
    for name, value in expected.items():
        np.testing.assert_array_equal(got[name], value)
    # Each update read twice (its norm, then the sum), never held as a list.
    assert sorted(reads) == sorted([*range(5), *range(5)])
    assert bounded[1:3] == deltas[1:3] and len(bounded) == 5
    with pytest.raises(IndexError):
        lazy[5]
