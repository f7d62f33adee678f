"""FEDREC_FOLD_IN_WEIGHT: how much a new user's liked items count against the item bias."""

from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from fedrec.server.api.main import create_app
from fedrec.server.api.settings import Settings
from fedrec.shared.checkpoint import save_catalog, save_checkpoint
from fedrec.shared.data.dataset import ItemCatalog

# Items 0-1 point along x, 2-3 along y; item 3 has by far the largest bias (the popular one).
FACTORS = np.array([[2.0, 0.0], [1.9, 0.1], [0.0, 2.0], [0.1, 1.9]], np.float32)
BIAS = np.array([0.0, 0.0, 0.0, 1.0], np.float32)


def _run(run_dir: Path) -> Path:
    save_catalog(
        run_dir,
        ItemCatalog(
            raw_ids=["a", "b", "c", "d"],
            titles=["A", "B", "C", "D"],
            genres=[[], [], [], []],
            texts=["A", "B", "C", "D"],
        ),
    )
    save_checkpoint(
        run_dir,
        round=1,
        tensors={"item_factors": FACTORS, "item_bias": BIAS},
        run_name="plain",
        kind="federated",
        config={},
        metrics={},
        history=[{"round": 1}],
        privacy=None,  # no DP: the service folds new users in
    )
    return run_dir


def _first(weight: float, run: Path) -> str:
    app = create_app(Settings(model_path=str(run), fold_in_weight=weight, load_in_background=False))
    with TestClient(app) as client:
        body = client.post("/v1/recommendations/cold-start", json={"liked_item_ids": ["a"], "k": 1})
        model = client.get("/v1/model").json()
    assert body.status_code == 200, body.text
    assert model["cold_start_fold_in"] and model["cold_start_fold_in_weight"] == weight
    return str(body.json()["items"][0]["id"])


def test_the_weight_trades_the_liked_items_against_popularity(tmp_path: Path) -> None:
    run = _run(tmp_path / "run")
    assert _first(0.0, run) == "d"  # the item bias alone: the popular item
    assert _first(1.0, run) == "b"  # the fold-in alone: the liked item's neighbour


def test_a_weight_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(ValidationError, match="fold_in_weight"):
        Settings(fold_in_weight=1.5)
