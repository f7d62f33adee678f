"""The round loop, driven through a fake Grid: what the train messages tell the clients."""

import uuid
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pytest
from flwr.app import Message, MetricRecord, RecordDict
from flwr.app.error import Error

from fedrec.server.server_app import run_federation
from fedrec.shared.checkpoint import latest_round, load_checkpoint
from fedrec.shared.config import resolve_config
from fedrec.shared.errors import ConfigError

pytestmark = pytest.mark.usefixtures("task_identity")  # see conftest.py


class _Grid:
    """Node ids and an echoing send_and_receive: every client returns the model unchanged."""

    def __init__(self, n: int) -> None:
        self.nodes = list(range(1, n + 1))
        self.sent: list[Message] = []
        self.stored: dict[str, Message] = {}

    def get_node_ids(self) -> Iterable[int]:
        return self.nodes

    def push_messages(self, messages: Iterable[Message]) -> list[str]:
        """Stored for :meth:`pull_messages`, which answers as :meth:`send_and_receive` does."""
        ids = []
        for msg in messages:
            msg.metadata.__dict__["_message_id"] = uuid.uuid4().hex  # as Flower's grid sets it
            self.stored[msg.metadata.message_id] = msg
            ids.append(msg.metadata.message_id)
        return ids

    def pull_messages(self, ids: Iterable[str]):  # type: ignore[no-untyped-def]
        ready = [self.stored.pop(i) for i in list(ids) if i in self.stored]
        return self.send_and_receive(ready) if ready else []

    def send_and_receive(self, messages: Iterable[Message], timeout: float | None = None):  # type: ignore[no-untyped-def]
        replies = []
        for msg in messages:
            self.sent.append(msg)
            if msg.metadata.message_type.startswith("evaluate"):
                metrics = MetricRecord({"weight": 0.0, "n_users": 0.0})
            else:
                metrics = MetricRecord({"weight": 1.0, "train-loss": 0.5, "epsilon": -1.0})
            content = RecordDict({"arrays": msg.content["arrays"], "metrics": metrics})
            replies.append(Message(content=content, reply_to=msg))
        return replies


def _ratings(path: Path) -> Path:
    rng = np.random.default_rng(0)
    rows = ["user,item,rating,timestamp"]
    for u in range(6):
        for t, i in enumerate(rng.choice(20, 8, replace=False)):
            rows.append(f"{u},{i},4,{1000 + t}")
    path.write_text("\n".join(rows) + "\n")
    return path


def _train_configs(grid: _Grid) -> list[tuple[int, int, str]]:
    out = []
    for msg in grid.sent:
        config = dict(msg.content["config"])
        rnd, resumed, token = (
            config[k] for k in ("server-round", "resumed-from", "server-incarnation")
        )
        assert isinstance(rnd, int) and isinstance(resumed, int) and isinstance(token, str)
        out.append((rnd, resumed, token))
    return out


def test_train_messages_name_the_server_incarnation_and_its_resumed_round(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = {
        "dataset": "generic",
        "data-path": str(_ratings(tmp_path / "ratings.csv")),
        "embedding-dim": 4,
        "fraction-train": 0.5,
        "min-train-nodes": 1,
        "fraction-evaluate": 0.0,
        "final-evaluate-all": False,
        "output-dir": str(tmp_path / "runs"),
        "run-name": "r",
    }
    first = _Grid(4)
    run_federation(first, resolve_config({}, {**settings, "num-rounds": 2}))
    sent = _train_configs(first)
    assert [r for r, _, _ in sent] == [1, 1, 2, 2]  # fraction-train 0.5 of 4 clients
    assert {(resumed, token) for _, resumed, token in sent} == {(1, sent[0][2])}
    assert len(sent[0][2]) == 32

    # A new server process resumes from checkpoint 2: new token, resumed from round 3.
    second = _Grid(4)
    run_federation(second, resolve_config({}, {**settings, "num-rounds": 4}))
    assert latest_round(tmp_path / "runs" / "r") == 4
    resent = _train_configs(second)
    assert [r for r, _, _ in resent] == [3, 3, 4, 4]
    assert {(resumed, token) for _, resumed, token in resent} == {(3, resent[0][2])}
    assert resent[0][2] != sent[0][2]
    # ... and tells clients which rounds the first process checkpointed.
    committed = list(dict(second.sent[0].content["config"])["committed-incarnations"])  # type: ignore[call-overload]
    assert committed == [f"{sent[0][2]}:1:2"]


def test_committed_incarnations_span_the_rounds_each_process_checkpointed() -> None:
    from fedrec.server.resume import committed_incarnations

    history = [
        {"round": 1, "server-incarnation": "a"},
        {"round": 2, "server-incarnation": "a"},
        {"round": 3, "server-incarnation": "b"},
        {"round": 4},  # written before tokens were recorded: no claim
    ]
    assert committed_incarnations(history) == ["a:1:2", "b:3:3"]
    assert committed_incarnations([]) == []


def test_the_run_identity_is_sent_to_clients_and_kept_across_restarts(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = {
        "dataset": "generic",
        "data-path": str(_ratings(tmp_path / "ratings.csv")),
        "embedding-dim": 4,
        "min-train-nodes": 1,
        "output-dir": str(tmp_path / "runs"),
        "run-name": "r",
    }
    first, second = _Grid(2), _Grid(2)
    run_federation(first, resolve_config({}, {**settings, "num-rounds": 1}))
    run_federation(second, resolve_config({}, {**settings, "num-rounds": 2}))
    ids = {dict(m.content["config"])["run-id"] for m in first.sent + second.sent}
    assert len(ids) == 1 and (tmp_path / "runs" / "r" / "RUN_ID").read_text() in ids


@pytest.mark.parametrize(
    ("dp", "setting", "evaluates"),
    [(True, "auto", False), (False, "auto", True), (True, "on", True), (False, "off", False)],
)
def test_federated_evaluation_runs_only_where_its_metrics_are_allowed(  # type: ignore[no-untyped-def]
    tmp_path, dp: bool, setting: str, evaluates: bool
) -> None:
    # Under DP the metrics are computed from held-out records without noise: by default no
    # evaluate message is sent, and the manifest's privacy block says what holds.
    settings = {
        "dataset": "generic",
        "data-path": str(_ratings(tmp_path / "ratings.csv")),
        "embedding-dim": 4,
        "min-train-nodes": 1,
        "num-rounds": 1,
        "dp-enabled": dp,
        "federated-evaluation": setting,
        "output-dir": str(tmp_path / "runs"),
        "run-name": "r",
    }
    grid = _Grid(2)
    run_dir = run_federation(grid, resolve_config({}, settings))
    kinds = {m.metadata.message_type for m in grid.sent}
    assert ("evaluate" in kinds) == evaluates
    from fedrec.shared.checkpoint import load_checkpoint

    privacy = load_checkpoint(run_dir).manifest["privacy"]
    if dp:
        assert ("NOT covered: federated-evaluation metrics" in privacy["covers"]) == evaluates
        assert privacy["dp_batch_size"] == 64


class _DeviceGrid(_Grid):
    """Clients on the CPU that report it; ``broken`` nodes fail as an invalid node config."""

    def __init__(self, n: int, broken: tuple[int, ...] = ()) -> None:
        super().__init__(n)
        self.broken = broken

    def send_and_receive(self, messages: Iterable[Message], timeout: float | None = None):  # type: ignore[no-untyped-def]
        replies = []
        for msg in messages:
            self.sent.append(msg)
            if msg.metadata.dst_node_id in self.broken:
                reason = "<class 'fedrec.shared.errors.NodeConfigError'>:<'device='cuda': no'>"
                replies.append(Message(Error(code=2, reason=reason), reply_to=msg))
                continue
            metrics = MetricRecord({"weight": 1.0, "epsilon": 0.5, "device": -1.0})
            content = RecordDict({"arrays": msg.content["arrays"], "metrics": metrics})
            replies.append(Message(content=content, reply_to=msg))
        return replies


def _settings(tmp_path: Path, **extra: object) -> dict[str, object]:
    return {
        "dataset": "generic",
        "data-path": str(_ratings(tmp_path / "ratings.csv")),
        "embedding-dim": 4,
        "min-train-nodes": 1,
        "text-tower": "off",
        "output-dir": str(tmp_path / "runs"),
        "run-name": "r",
        **extra,
    }


def test_each_round_s_line_and_the_resume_decision_are_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _settings(tmp_path)
    with caplog.at_level("INFO", logger="fedrec"):
        run_federation(_DeviceGrid(2), resolve_config({}, {**settings, "num-rounds": 1}))
        run_federation(_DeviceGrid(2), resolve_config({}, {**settings, "num-rounds": 2}))
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("fedrec")]
    run_dir = tmp_path / "runs" / "r"
    assert f"starting {run_dir} at round 1: it holds no checkpoint" in lines
    assert f"resuming {run_dir} from round 1" in lines
    rounds = [line for line in lines if line.startswith("round ")]
    assert [line.split(" | ")[0] for line in rounds] == ["round 1/1", "round 2/2"]
    assert all(
        " | clients 2 ok/0 failed/0 rejected | devices 2 cpu/0 cuda | eps 0.50 | " in line
        for line in rounds
    ), rounds
    assert "2 nodes train on cpu (1, 2)" in lines  # one line for the nodes new on a device


def test_a_node_with_an_invalid_node_config_is_asked_once_then_left_out(tmp_path: Path) -> None:
    grid = _DeviceGrid(3, broken=(3,))
    run_federation(grid, resolve_config({}, {**_settings(tmp_path), "num-rounds": 3}))
    asked = [m.metadata.dst_node_id for m in grid.sent]
    assert asked.count(3) == 1 and asked.count(1) == 3
    assert load_checkpoint(tmp_path / "runs" / "r").manifest["history"][-1]["clients-ok"] == 2


def test_a_run_that_cannot_go_on_without_its_misconfigured_nodes_fails_saying_why(
    tmp_path: Path,
) -> None:
    grid = _DeviceGrid(2, broken=(2,))
    with pytest.raises(ConfigError, match=r"node 2: .*device='cuda'.*restart them"):
        run_federation(grid, resolve_config({}, {**_settings(tmp_path, **{"min-train-nodes": 2})}))
    assert latest_round(tmp_path / "runs" / "r") == 1  # the round it could train is kept
