"""Checkpoints: round trip, LATEST, atomicity, hash checks, newest-across-runs."""

import json
import time
from pathlib import Path

import numpy as np
import pytest

from fedrec.shared.checkpoint import (
    latest_round,
    list_rounds,
    load_checkpoint,
    save_catalog,
    save_checkpoint,
)
from fedrec.shared.data.dataset import ItemCatalog
from fedrec.shared.errors import CheckpointError

CATALOG = ItemCatalog(
    raw_ids=["a", "b", "c"],
    titles=["A (1990)", "B", "C"],
    genres=[["Drama"], [], ["Comedy", "Drama"]],
    texts=["A (1990). Genres: Drama.", "B.", "C. Genres: Comedy, Drama."],
    years=[1990, None, None],
)


def _save(run_dir: Path, rnd: int, value: float = 0.0, name: str = "run") -> Path:
    save_catalog(run_dir, CATALOG)
    return save_checkpoint(
        run_dir,
        round=rnd,
        tensors={
            "item_factors": np.full((3, 2), value, np.float32),
            "item_bias": np.arange(3, dtype=np.float32),
        },
        run_name=name,
        kind="federated",
        config={"seed": 1},
        metrics={"loss": value},
        history=[{"round": r} for r in range(1, rnd + 1)],
        privacy={"unit": "record", "epsilon": 1.0, "delta": 1e-5},
    )


def test_round_trip_and_latest(tmp_path: Path) -> None:
    run = tmp_path / "run"
    _save(run, 1, 1.0)
    _save(run, 2, 2.0)
    assert latest_round(run) == 2 and list_rounds(run) == [1, 2]
    ckpt = load_checkpoint(run)
    assert ckpt.round == 2 and ckpt.model_version == "run@r2"
    assert np.all(ckpt.tensors["item_factors"] == 2.0)
    assert ckpt.catalog == CATALOG
    assert ckpt.manifest["privacy"]["unit"] == "record"
    assert load_checkpoint(run, round=1).manifest["metrics"] == {"loss": 1.0}


def test_interrupted_write_is_ignored(tmp_path: Path) -> None:
    run = tmp_path / "run"
    _save(run, 1)
    # A crash mid-write leaves a temp folder and a round folder without manifest.
    (run / "checkpoints" / ".tmp-abc").mkdir()
    (run / "checkpoints" / "round-00002").mkdir()
    assert latest_round(run) == 1 and list_rounds(run) == [1]
    assert load_checkpoint(run).round == 1


def test_corrupted_tensor_file_is_detected(tmp_path: Path) -> None:
    path = _save(tmp_path / "run", 1)
    blob = bytearray((path / "model.safetensors").read_bytes())
    blob[-1] ^= 0xFF
    (path / "model.safetensors").write_bytes(bytes(blob))
    with pytest.raises(CheckpointError, match="SHA-256"):
        load_checkpoint(tmp_path / "run")


def test_damaged_manifest_and_missing_files_are_clear_errors(tmp_path: Path) -> None:
    path = _save(tmp_path / "run", 1)
    (path / "manifest.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nowhere")
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path / "run" / "checkpoints")


def test_a_run_cannot_change_its_catalogue(tmp_path: Path) -> None:
    save_catalog(tmp_path, CATALOG)
    other = ItemCatalog(["x"], ["X"], [[]], ["X."], [None])
    with pytest.raises(CheckpointError, match="another catalogue"):
        save_catalog(tmp_path, other)


def test_output_dir_gives_the_newest_run(tmp_path: Path) -> None:
    _save(tmp_path / "old", 5, name="old")
    time.sleep(0.01)
    _save(tmp_path / "new", 1, name="new")
    assert load_checkpoint(tmp_path).model_version == "new@r1"
    manifest = json.loads(
        (tmp_path / "new" / "checkpoints" / "round-00001" / "manifest.json").read_text()
    )
    assert manifest["format"] == "fedrec-checkpoint/1"


def test_server_state_round_trip_and_tamper_check(tmp_path: Path) -> None:
    run = tmp_path / "run"
    save_catalog(run, CATALOG)
    moments = {"m.item_factors": np.full((3, 2), 0.5, np.float32)}
    save_checkpoint(
        run,
        round=1,
        tensors={"item_factors": np.zeros((3, 2), np.float32), "item_bias": np.zeros(3)},
        run_name="run",
        kind="federated",
        config={},
        metrics={},
        history=[],
        privacy=None,
        server_state=moments,
    )
    ckpt = load_checkpoint(run)
    assert np.array_equal(ckpt.server_state["m.item_factors"], moments["m.item_factors"])
    assert "m.item_factors" not in ckpt.tensors  # never served as part of the model
    (ckpt.path / "server_state.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="server state"):
        load_checkpoint(run)
    assert _save(tmp_path / "plain", 1) and load_checkpoint(tmp_path / "plain").server_state == {}
