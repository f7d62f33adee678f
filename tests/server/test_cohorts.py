"""Simulated users on worker nodes: the server samples users, each worker trains several.

Through the real ClientApp and ServerApp code over an in-process grid (no Ray): a round of
cohorts must give every sampled user what one user per node gives it, and the same model.
"""

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flwr.app import ArrayRecord, ConfigRecord, Error, Message, MessageType

from fedrec.client.client_app import build_client_app
from fedrec.client.dataview import state_dir
from fedrec.client.state import ClientStateStore
from fedrec.server.aggregation import ServerSGD
from fedrec.server.cohorts import MAX_REPLY_BYTES, SimulatedUsers
from fedrec.server.server_app import run_federation
from fedrec.server.strategy import FedRecStrategy
from fedrec.shared.checkpoint import load_checkpoint, run_id
from fedrec.shared.cohort_messages import cohort_of, reply_content
from fedrec.shared.config import FedRecConfig, resolve_config
from fedrec.shared.data import load_split
from fedrec.shared.models.initial import init_global
from fedrec.shared.serialization import arrays_to_numpy, numpy_to_arrays
from fedrec.simulation.plain_loop import PlainLoop
from tests.e2e.helpers import tiny_run_settings

pytestmark = pytest.mark.usefixtures("task_identity")

USERS, WORKERS = 12, 3


def _settings(tmp_path: Path, name: str, **extra: object) -> dict[str, Any]:
    return tiny_run_settings(tmp_path, name, users=USERS, num_rounds=1, **extra)


def _flower(
    tmp_path: Path, loopback_grid: type, name: str, *, cohorts: bool, **extra: object
) -> tuple[Path, FedRecConfig]:
    settings = _settings(tmp_path, name, **extra)
    cfg = resolve_config({}, settings)
    app = build_client_app(settings)
    if cohorts:
        users = SimulatedUsers(USERS, WORKERS)
        run_dir = run_federation(loopback_grid(app, WORKERS, node_config=True), cfg, users=users)
    else:
        cfg = cfg.replace(**{"min-available-nodes": USERS})
        run_dir = run_federation(loopback_grid(app, USERS, node_config=True), cfg)
    return run_dir, cfg


def _states(cfg: FedRecConfig, run_dir: Path) -> dict[int, Any]:
    identity = run_id(run_dir)
    out = {}
    for pid in range(USERS):
        state = ClientStateStore(state_dir(cfg, pid, None, identity)).load()
        if state is not None:
            out[pid] = state
    return out


def test_cohorts_train_every_user_as_one_user_per_node_and_the_plain_loop_do(
    tmp_path: Path, loopback_grid: type
) -> None:
    # Execute: the same round three ways.
    cohort_dir, cfg = _flower(tmp_path, loopback_grid, "cohorts", cohorts=True)
    single_dir, _ = _flower(tmp_path, loopback_grid, "single", cohorts=False)
    _, split = load_split(cfg.data)
    plain = PlainLoop(cfg, USERS, init_global(cfg, split.n_items), tmp_path / "plain")
    plain.train_round(list(range(USERS)), 1)
    # Assert: every user trained once, with the same record-level epsilon either way...
    cohort_states, single_states = _states(cfg, cohort_dir), _states(cfg, single_dir)
    assert sorted(cohort_states) == sorted(single_states) == list(range(USERS))
    for pid, state in cohort_states.items():
        assert state.rounds_trained == [1]
        assert state.epsilon == pytest.approx(single_states[pid].epsilon) and state.epsilon > 0
    # ...and the same global model.
    cohort_model = load_checkpoint(cohort_dir).tensors
    single_model = load_checkpoint(single_dir).tensors
    for name, tensor in cohort_model.items():
        assert np.allclose(tensor, single_model[name], rtol=1e-5, atol=1e-7), name
        assert np.allclose(tensor, plain.global_tensors[name], rtol=1e-5, atol=1e-7), name
    row = load_checkpoint(cohort_dir).manifest["history"][0]
    assert row["clients-sampled"] == row["clients-ok"] == USERS
    assert row["clients-on-cpu"] == USERS


def test_the_server_samples_users_and_each_worker_trains_its_share(
    tmp_path: Path, loopback_grid: type
) -> None:
    extra = {"fraction-train": 0.5, "fraction-evaluate": 0.0, "num-rounds": 2, "dp-enabled": False}
    settings = _settings(tmp_path, "half", **extra)
    grid = loopback_grid(build_client_app(settings), WORKERS, node_config=True)
    run_dir = run_federation(grid, resolve_config({}, settings), users=SimulatedUsers(12, 3))
    # One message per worker per round and one for the final evaluation (no DP: it runs).
    assert len(grid.replies) == 3 * WORKERS
    assert all(len(r.content.metric_records) == USERS // 2 // WORKERS for r in grid.replies[:6])
    # Each round's sampled users trained, the others did not.
    history = load_checkpoint(run_dir).manifest["history"]
    states = _states(resolve_config({}, settings), run_dir)
    for row in history:
        trained = [p for p, s in states.items() if row["round"] in s.rounds_trained]
        assert row["clients-sampled"] == row["clients-ok"] == len(trained) == USERS // 2
    assert history[-1]["eval/n_users"] == USERS  # the last round evaluates every user


class _Workers:
    """Worker nodes that reply for their members, fail, or never answer."""

    def __init__(self, fail: int | None = None, silent: int | None = None) -> None:
        self.fail, self.silent = fail, silent

    def get_node_ids(self) -> list[int]:
        return [1, 2, 3]

    def answer(self, messages: list[Message]) -> list[Message]:
        replies = []
        for i, msg in enumerate(messages):
            msg.metadata.__dict__["_message_id"] = f"m{i}"
            if msg.metadata.dst_node_id == self.silent:
                continue
            if msg.metadata.dst_node_id == self.fail:
                replies.append(Message(Error(code=0, reason="worker died"), reply_to=msg))
                continue
            cohort = cohort_of(msg.content.config_records["config"])
            assert cohort is not None
            arrays = arrays_to_numpy(msg.content["arrays"])
            members = {
                p: ({k: v + 1.0 for k, v in arrays.items()}, {"weight": 1.0})
                for p in cohort.partitions
            }
            replies.append(Message(reply_content(members), reply_to=msg))
        return replies


@pytest.mark.parametrize(("fail", "silent"), [(2, None), (None, 3)])
def test_a_failed_or_silent_worker_counts_for_each_of_its_users(
    fail: int | None, silent: int | None
) -> None:
    strategy = FedRecStrategy(
        fraction_train=1.0,
        fraction_evaluate=0.0,
        min_train_nodes=1,
        optimizer=ServerSGD(1.0),
        users=SimulatedUsers(10, 3),
    )
    workers = _Workers(fail, silent)
    zero = {"item_factors": np.zeros((4, 2), np.float32)}
    messages = list(
        strategy.configure_train(1, numpy_to_arrays(zero), ConfigRecord({}), workers)  # type: ignore[arg-type]
    )
    assert [len(cohort_of(m.content.config_records["config"]).partitions) for m in messages] == [
        4,
        3,
        3,
    ]  # type: ignore[union-attr]
    arrays, metrics = strategy.aggregate_train(1, workers.answer(messages))
    # Worker 2 or 3 held 3 users: they failed or timed out; the other 7 were averaged.
    assert metrics["clients-sampled"] == 10 and metrics["clients-ok"] == 7
    assert metrics["clients-failed"] == (3 if fail else 0)
    assert metrics["clients-timed-out"] == (3 if silent else 0)
    assert isinstance(arrays, ArrayRecord)
    assert np.allclose(arrays_to_numpy(arrays)["item_factors"], 1.0)


def test_train_messages_are_cut_to_keep_each_reply_within_its_byte_budget() -> None:
    users = list(range(100))
    config = ConfigRecord({})
    # A model of about a tenth of the budget: 9 users per message (with the npy header).
    model = numpy_to_arrays({"q": np.zeros(MAX_REPLY_BYTES // 40, np.float32)})
    model_bytes = sum(len(a.data) for a in model.values())
    train = SimulatedUsers(100, 3).messages(users, model, config, [1, 2, 3], MessageType.TRAIN)
    sizes = [len(cohort_of(m.content.config_records["config"]).partitions) for m in train]  # type: ignore[union-attr]
    assert sum(sizes) == 100 and len(train) == 12 and max(sizes) - min(sizes) <= 1
    assert max(sizes) * model_bytes <= MAX_REPLY_BYTES < (max(sizes) + 1) * model_bytes
    assert {m.metadata.dst_node_id for m in train} == {1, 2, 3}
    # A small model, evaluation (metrics only), or a cap asked for: the budget does not cut.
    small = numpy_to_arrays({"q": np.zeros(10, np.float32)})
    assert len(SimulatedUsers(100, 3).messages(users, small, config, [1, 2, 3], "train")) == 3
    assert len(SimulatedUsers(100, 3).messages(users, model, config, [1, 2, 3], "evaluate")) == 3
    capped = SimulatedUsers(100, 3, per_message=50)
    assert len(capped.messages(users, model, config, [1, 2, 3], MessageType.TRAIN)) == 3
