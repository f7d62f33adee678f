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


def test_model_route_says_which_parts_are_private_and_which_public(tmp_path: Path) -> None:
    app = create_app(Settings(model_path=str(_run(tmp_path / "both")), load_in_background=False))
    with TestClient(app) as client:
        parts = {c["part"]: c for c in client.get("/v1/model").json()["components"]}
    assert parts["item factors and biases"]["source"] == "private-dp"
    assert "user-level" in parts["item factors and biases"]["detail"]
    assert parts["catalogue"]["source"] == "public"


def test_components_of_a_cooccurrence_model_separate_the_release_from_public_text() -> None:
    from fedrec.server.serving.provenance import components
    from fedrec.shared.models.cooccurrence import ITEM_PRIOR
    from fedrec.shared.models.initial import USER_HEAD_B, USER_HEAD_W

    tensors = {"item_factors", "item_bias", USER_HEAD_W, USER_HEAD_B, ITEM_PRIOR}
    manifest = {
        "kind": "cooccurrence",
        "user_privacy": {"unit": "user", "epsilon": 4.0, "delta": 5e-4},
    }
    parts = {c["part"]: c["source"] for c in components(manifest, tensors)}
    assert parts["item factors, collaborative part"] == "private-dp"
    assert parts["item factors, content part"] == "public"
    assert parts["text encoder"] == "public"
    assert parts["item popularity for new users (free text, liked items)"] == "private-dp"
    exact = {c["part"]: c["source"] for c in components({"kind": "cooccurrence"}, tensors)}
    assert exact["item factors, collaborative part"] == "private-exact"
