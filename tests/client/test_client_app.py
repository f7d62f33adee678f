"""What a ClientApp lets leave the device: under DP only the update and epsilon values."""

from pathlib import Path

import numpy as np
import pytest
import torch
from flwr.app import ConfigRecord, Context, Message, RecordDict

from fedrec.client.client_app import build_client_app
from fedrec.client.replies import train_metrics
from fedrec.shared.cohort_messages import Cohort
from fedrec.shared.config import resolve_config
from fedrec.shared.data import load_split
from fedrec.shared.errors import NodeConfigError
from fedrec.shared.models.initial import init_global
from fedrec.shared.serialization import numpy_to_arrays
from fedrec.shared.training import LocalResult

pytestmark = pytest.mark.usefixtures("task_identity")


def _result() -> LocalResult:
    return LocalResult(0.7, 4, 33, 1.0, [(2.1, 1.0, 2)], 1.5)


@pytest.mark.parametrize(
    ("settings", "allowed"),
    [
        ({}, {"weight", "epsilon"}),  # record-level DP (the default)
        ({"dp-enabled": False, "user-dp": "central"}, {"weight", "epsilon"}),
        ({"dp-enabled": False}, {"weight", "epsilon", "train-loss", "steps", "seconds"}),
    ],
)
def test_under_any_dp_no_statistic_of_the_records_is_sent(
    settings: dict[str, object], allowed: set[str]
) -> None:
    # Regression: the noise-free mean training loss and step count left every DP client and
    # were published in every checkpoint's history.
    cfg = resolve_config({}, settings)
    assert set(train_metrics(cfg, _result(), 1.25, user_epsilon=None)) == allowed


def _ratings(path: Path) -> Path:
    rng = np.random.default_rng(0)
    rows = ["user,item,rating,timestamp"]
    for u in range(3):
        rows += [f"{u},{i},4,{1000 + t}" for t, i in enumerate(rng.choice(20, 6, replace=False))]
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize(("setting", "refused"), [("auto", True), ("on", False)])
def test_a_dp_client_refuses_federated_evaluation_unless_the_run_asks(
    tmp_path: Path, loopback_grid: type, setting: str, refused: bool
) -> None:
    settings = {
        "dataset": "generic",
        "data-path": str(_ratings(tmp_path / "r.csv")),
        "embedding-dim": 4,
        "text-tower": "off",
        "federated-evaluation": setting,
        "output-dir": str(tmp_path / "runs"),
    }
    cfg = resolve_config({}, settings)
    _, split = load_split(cfg.data)
    grid = loopback_grid(build_client_app(settings), 3, node_config=True)
    content = RecordDict(
        {
            "arrays": numpy_to_arrays(init_global(cfg, split.n_items)),
            "config": ConfigRecord({"k": 10, "personalize-epochs": 0}),
        }
    )
    msg = Message(content=content, dst_node_id=1, message_type="evaluate")
    (reply,) = grid.send_and_receive([msg])
    assert reply.has_error() == refused
    if refused:
        assert "refusing federated evaluation" in reply.error.reason


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_node_asking_for_cuda_without_it_fails_before_reading_any_data() -> None:
    # No data set, no state dir: the node config is checked before either is needed.
    app = build_client_app()
    context = Context(
        run_id=1, node_id=1, node_config={"device": "cuda"}, state=RecordDict(), run_config={}
    )
    msg = Message(RecordDict({"config": ConfigRecord({})}), dst_node_id=1, message_type="train")
    with pytest.raises(NodeConfigError, match="device='cuda'"):
        app(msg, context)


@pytest.mark.parametrize("message_type", ["train", "evaluate"])
def test_a_node_with_its_own_data_refuses_a_cohort(tmp_path: Path, message_type: str) -> None:
    # A cohort names partitions of a simulation's data set: a real node trains its own users.
    app = build_client_app()
    node = {"data-dir": str(tmp_path)}
    context = Context(run_id=1, node_id=1, node_config=node, state=RecordDict(), run_config={})
    config = ConfigRecord({"server-round": 1, **Cohort((0, 1), 4).config()})
    msg = Message(RecordDict({"config": config}), dst_node_id=1, message_type=message_type)
    with pytest.raises(ValueError, match="only `fedrec simulate`'s worker nodes"):
        app(msg, context)
