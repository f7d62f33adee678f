"""GET /v1/model states both guarantees, each with its unit: record-level and user-level."""

from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from fedrec.server.api.main import create_app
from fedrec.server.api.settings import Settings
from fedrec.server.user_dp import UserLevelAccountant
from fedrec.shared.checkpoint import save_catalog, save_checkpoint
from fedrec.shared.config import resolve_config
from fedrec.shared.data.dataset import ItemCatalog
from fedrec.shared.privacy import report_for


def _run(run_dir: Path) -> Path:
    cfg = resolve_config({}, {"user-dp": "secagg", "user-accountant": "prv"})
    user = UserLevelAccountant(cfg.privacy)
    user.fix_delta(100)
    user.record_round(sampled=10, available=100)
    user.observe_clients(1.9)
    save_catalog(
        run_dir,
        ItemCatalog(raw_ids=["1", "2"], titles=["A", "B"], genres=[[], []], texts=["A", "B"]),
    )
    save_checkpoint(
        run_dir,
        round=1,
        tensors={
            "item_factors": np.eye(2, dtype=np.float32),
            "item_bias": np.zeros(2, np.float32),
        },
        run_name="both",
        kind="federated",
        config={"user-dp": "secagg"},
        metrics={},
        history=[{"round": 1}],
        privacy=report_for(cfg.privacy, 2.5),
        user_privacy=user.report(),
    )
    return run_dir


def test_model_route_reports_record_and_user_level_guarantees(tmp_path: Path) -> None:
    app = create_app(Settings(model_path=str(_run(tmp_path / "both")), load_in_background=False))
    with TestClient(app) as client:
        body = client.get("/v1/model").json()
    record, user = body["privacy"], body["user_privacy"]
    assert record["unit"] == "record" and record["epsilon"] == 2.5
    assert user["unit"] == "user" and user["placement"] == "secagg"
    assert user["accountant"] == "prv" and user["delta"] == pytest.approx(100**-1.1)
    assert user["sample_rate"] == 0.1 and user["rounds"] == 1 and user["epsilon"] > 0
    assert user["epsilon_against_server"] == 1.9
    assert "SecAgg+" in user["mechanism"] and user["covers"]
