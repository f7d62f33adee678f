"""Aggregation: server learning rate, unweighted mean, and rejection of bad updates."""

from collections.abc import Iterable

import numpy as np
import pytest
from flwr.app import ArrayRecord, ConfigRecord, Error, Message, MetricRecord, RecordDict

from fedrec.server.strategy import FedRecStrategy
from fedrec.shared.serialization import arrays_to_numpy, numpy_to_arrays

pytestmark = pytest.mark.usefixtures("task_identity")  # see conftest.py


class _Grid:
    """Just enough of a Grid for configure_train: node ids, no network."""

    def __init__(self, n: int) -> None:
        self.nodes = list(range(1, n + 1))

    def get_node_ids(self) -> Iterable[int]:
        return self.nodes


def _reply(to: Message, q: np.ndarray, b: np.ndarray) -> Message:
    content = RecordDict(
        {
            "arrays": numpy_to_arrays({"item_factors": q, "item_bias": b}),
            "metrics": MetricRecord({"weight": 1.0, "train-loss": 0.5, "epsilon": 1.0}),
        }
    )
    return Message(content=content, reply_to=to)


def _round(strategy: FedRecStrategy, replies_fn):  # type: ignore[no-untyped-def]
    q0 = np.zeros((4, 2), np.float32)
    b0 = np.zeros(4, np.float32)
    msgs = list(
        strategy.configure_train(
            1, numpy_to_arrays({"item_factors": q0, "item_bias": b0}), ConfigRecord({}), _Grid(3)
        )
    )
    replies = []
    for i, msg in enumerate(msgs):
        replies.append(replies_fn(i, msg))
    return strategy.aggregate_train(1, replies)


def _strategy(server_lr: float = 1.0) -> FedRecStrategy:
    return FedRecStrategy(
        fraction_train=1.0, fraction_evaluate=0.0, min_train_nodes=3, server_learning_rate=server_lr
    )


@pytest.mark.parametrize("server_lr", [1.0, 3.0])
def test_mean_of_updates_times_server_lr(server_lr: float) -> None:
    deltas = [1.0, 2.0, 6.0]

    def reply(i: int, msg: Message) -> Message:
        return _reply(
            msg, np.full((4, 2), deltas[i], np.float32), np.full(4, deltas[i], np.float32)
        )

    arrays, metrics = _round(_strategy(server_lr), reply)
    got = arrays_to_numpy(arrays)
    assert np.allclose(got["item_factors"], server_lr * 3.0)
    assert metrics["clients-ok"] == 3


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_update_is_rejected_not_averaged(bad: float) -> None:
    def reply(i: int, msg: Message) -> Message:
        q = np.ones((4, 2), np.float32)
        if i == 0:
            q[2, 1] = bad
        return _reply(msg, q, np.zeros(4, np.float32))

    arrays, metrics = _round(_strategy(), reply)
    got = arrays_to_numpy(arrays)
    assert np.all(np.isfinite(got["item_factors"]))
    assert np.allclose(got["item_factors"], 1.0)
    assert metrics["clients-rejected"] == 1 and metrics["clients-ok"] == 2


def test_misshaped_update_is_rejected() -> None:
    def reply(i: int, msg: Message) -> Message:
        q = np.ones((5 if i == 1 else 4, 2), np.float32)
        return _reply(msg, q, np.zeros(4, np.float32))

    _, metrics = _round(_strategy(), reply)
    assert metrics["clients-rejected"] == 1


def test_all_rejected_keeps_the_model() -> None:
    def reply(i: int, msg: Message) -> Message:
        return _reply(msg, np.full((4, 2), np.nan, np.float32), np.zeros(4, np.float32))

    arrays, metrics = _round(_strategy(), reply)
    assert arrays is None and metrics["clients-ok"] == 0


def test_arrayrecord_round_trip() -> None:
    t = {"a": np.arange(6, dtype=np.float32).reshape(2, 3)}
    assert isinstance(numpy_to_arrays(t), ArrayRecord)
    assert np.array_equal(arrays_to_numpy(numpy_to_arrays(t))["a"], t["a"])


def test_update_with_a_norm_far_above_the_others_is_bounded() -> None:
    strategy = FedRecStrategy(
        fraction_train=1.0, fraction_evaluate=0.0, min_train_nodes=3, update_norm_factor=10.0
    )

    def reply(i: int, msg: Message) -> Message:
        value = 1e4 if i == 2 else 0.1 * (i + 1)
        return _reply(msg, np.full((4, 2), value, np.float32), np.zeros(4, np.float32))

    arrays, metrics = _round(strategy, reply)
    assert metrics["clients-rejected"] == 0 and metrics["clients-ok"] == 3
    assert metrics["clients-norm-bounded"] == 1
    moved = arrays_to_numpy(arrays)["item_factors"]
    # the 1e4 update counts at 10x the median norm at most: far from the mean it would force
    assert np.all(moved > 0.15) and np.all(moved < 10.0)


def test_failed_clients_are_counted_and_the_round_goes_on() -> None:
    def reply(i: int, msg: Message) -> Message:
        if i == 0:
            return Message(Error(code=0, reason="simulated failure"), reply_to=msg)
        return _reply(msg, np.ones((4, 2), np.float32), np.zeros(4, np.float32))

    arrays, metrics = _round(_strategy(), reply)
    assert metrics["clients-failed"] == 1 and metrics["clients-ok"] == 2
    assert np.allclose(arrays_to_numpy(arrays)["item_factors"], 1.0)
    # With accept-failures off the round is discarded instead.
    strict = FedRecStrategy(
        fraction_train=1.0, fraction_evaluate=0.0, min_train_nodes=3, accept_failures=False
    )
    arrays, metrics = _round(strict, reply)
    assert arrays is None and metrics["clients-failed"] == 1


def test_missing_replies_count_as_timed_out() -> None:
    strategy = _strategy()
    q0 = np.zeros((4, 2), np.float32)
    msgs = list(
        strategy.configure_train(
            1,
            numpy_to_arrays({"item_factors": q0, "item_bias": np.zeros(4, np.float32)}),
            ConfigRecord({}),
            _Grid(3),
        )
    )
    replies = [_reply(m, np.ones((4, 2), np.float32), np.zeros(4, np.float32)) for m in msgs[:2]]
    _, metrics = strategy.aggregate_train(1, replies)
    assert metrics["clients-sampled"] == 3 and metrics["clients-timed-out"] == 1


class _GrowingGrid(_Grid):
    """Nodes that register over time, as in a starting simulation."""

    def __init__(self, counts: list[int]) -> None:
        super().__init__(max(counts))
        self.counts = counts

    def get_node_ids(self) -> Iterable[int]:
        n = self.counts.pop(0) if len(self.counts) > 1 else self.counts[0]
        return self.nodes[:n]


def test_sampling_waits_for_min_available_nodes_before_sizing_the_sample() -> None:
    # Regression: FedAvg sized the sample from the 2 nodes connected first (fraction 1.0 of
    # 2), so round 1 of a simulation trained 2 of 8 clients.
    strategy = FedRecStrategy(
        fraction_train=1.0, fraction_evaluate=1.0, min_train_nodes=2, min_available_nodes=8
    )
    arrays = numpy_to_arrays({"item_factors": np.zeros((4, 2), np.float32)})
    train = list(strategy.configure_train(1, arrays, ConfigRecord({}), _GrowingGrid([2, 2, 8])))
    assert len(train) == 8
    evaluate = list(strategy.configure_evaluate(1, arrays, ConfigRecord({}), _GrowingGrid([3, 8])))
    assert len(evaluate) == 8


def test_clients_out_of_budget_are_counted_and_left_out() -> None:
    def reply(i: int, msg: Message) -> Message:
        if i == 0:
            content = RecordDict(
                {
                    "arrays": ArrayRecord(),
                    "metrics": MetricRecord({"weight": 1.0, "budget-exhausted": 1.0}),
                }
            )
            return Message(content=content, reply_to=msg)
        return _reply(msg, np.full((4, 2), 2.0, np.float32), np.zeros(4, np.float32))

    arrays, metrics = _round(_strategy(), reply)
    assert metrics["clients-out-of-budget"] == 1
    assert metrics["clients-ok"] == 2 and metrics["clients-rejected"] == 0
    assert np.allclose(arrays_to_numpy(arrays)["item_factors"], 2.0)


def test_a_failure_the_superlink_reports_names_the_node_that_went_silent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Prepare: messages as Flower pushes them (ids set in place), one answered by the
    # SuperLink itself (its own node id) because the node stopped sending heartbeats.
    strategy = _strategy()
    q0 = np.zeros((4, 2), np.float32)
    arrays = numpy_to_arrays({"item_factors": q0, "item_bias": np.zeros(4, np.float32)})
    msgs = list(strategy.configure_train(1, arrays, ConfigRecord({}), _Grid(3)))
    for i, msg in enumerate(msgs):
        msg.metadata.__dict__["_message_id"] = f"m{i}"
    silent = Message(Error(code=5, reason="Node Unavailable"), reply_to=msgs[1])
    silent.metadata.__dict__["_src_node_id"] = 1  # the SuperLink's id
    ok = _reply(msgs[0], np.ones((4, 2), np.float32), np.zeros(4, np.float32))
    # Execute
    with caplog.at_level("WARNING", logger="fedrec"):
        strategy.aggregate_train(1, [ok, silent])
    # Assert
    assert f"round 1: node {msgs[1].metadata.dst_node_id} failed: Node Unavailable" in [
        r.getMessage() for r in caplog.records
    ]
