"""Versioned checkpoints: safetensors for tensors + a JSON manifest. (Interim minimal version.)"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file, save_file

from fedrec.shared.data.dataset import ItemCatalog
from fedrec.shared.errors import CheckpointError

FORMAT = "fedrec-checkpoint/1"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _catalog_json(catalog: ItemCatalog) -> str:
    items = [
        {
            "index": i,
            "id": catalog.raw_ids[i],
            "title": catalog.titles[i],
            "genres": catalog.genres[i],
            "year": catalog.years[i] if catalog.years else None,
            "text": catalog.texts[i],
        }
        for i in range(len(catalog))
    ]
    return json.dumps({"format": "fedrec-catalog/1", "items": items})


def save_catalog(run_dir: Path, catalog: ItemCatalog) -> None:
    """Write the run's item catalogue once."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "catalog.json"
    text = _catalog_json(catalog)
    if path.exists():
        if path.read_text() != text:
            raise CheckpointError(f"{path} holds another catalogue; use a new run directory")
        return
    path.write_text(text)


def _round_dir(run_dir: Path, rnd: int) -> Path:
    return run_dir / "checkpoints" / f"round-{rnd:05d}"


def save_checkpoint(
    run_dir: Path,
    *,
    round: int,
    tensors: Mapping[str, np.ndarray],
    run_name: str,
    kind: str,
    config: Mapping[str, Any],
    metrics: Mapping[str, Any],
    history: Sequence[Mapping[str, Any]],
    privacy: Mapping[str, Any] | None,
) -> Path:
    """Write a checkpoint atomically, then point LATEST at it."""
    target = _round_dir(run_dir, round)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".tmp-"))
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(tmp / "model.safetensors"))
    manifest = {
        "format": FORMAT,
        "model_version": f"{run_name}@r{round}",
        "run_name": run_name,
        "round": round,
        "created_at": datetime.now(UTC).isoformat(),
        "kind": kind,
        "config": dict(config),
        "metrics": dict(metrics),
        "history": [dict(h) for h in history],
        "privacy": dict(privacy) if privacy else None,
        "tensors": {
            "file": "model.safetensors",
            "sha256": _sha256(tmp / "model.safetensors"),
            "shapes": {k: list(v.shape) for k, v in tensors.items()},
        },
        "catalog_sha256": _sha256(run_dir / "catalog.json"),
        "n_items": int(tensors["item_factors"].shape[0]),
        "embedding_dim": int(tensors["item_factors"].shape[1]),
    }
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
    if target.exists():
        shutil.rmtree(target)
    os.rename(tmp, target)
    fd, latest_tmp = tempfile.mkstemp(dir=run_dir, prefix=".LATEST.")
    os.close(fd)
    Path(latest_tmp).write_text(target.name)
    os.replace(latest_tmp, run_dir / "LATEST")
    return target


def latest_round(run_dir: Path) -> int | None:
    """The newest complete round of a run, or None."""
    latest = Path(run_dir) / "LATEST"
    if not latest.exists():
        return None
    return int(latest.read_text().strip().split("-")[1])


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint."""

    path: Path
    manifest: dict[str, Any]
    tensors: dict[str, np.ndarray]
    catalog: ItemCatalog

    @property
    def round(self) -> int:
        """The round (or epoch) this checkpoint was written at."""
        return int(self.manifest["round"])

    @property
    def model_version(self) -> str:
        """``<run_name>@r<round>``."""
        return str(self.manifest["model_version"])


def load_checkpoint(path: Path, *, round: int | None = None) -> Checkpoint:
    """Load a run's latest (or given) checkpoint."""
    path = Path(path)
    if (path / "manifest.json").exists():
        ckpt_dir = path
    else:
        rnd = round if round is not None else latest_round(path)
        if rnd is None:
            raise CheckpointError(f"no checkpoint under {path}")
        ckpt_dir = _round_dir(path, rnd)
    manifest = json.loads((ckpt_dir / "manifest.json").read_text())
    tensors = load_file(str(ckpt_dir / "model.safetensors"))
    cat = json.loads((ckpt_dir.parent.parent / "catalog.json").read_text())["items"]
    catalog = ItemCatalog(
        raw_ids=[c["id"] for c in cat],
        titles=[c["title"] for c in cat],
        genres=[c["genres"] for c in cat],
        texts=[c["text"] for c in cat],
        years=[c["year"] for c in cat],
    )
    return Checkpoint(path=ckpt_dir, manifest=manifest, tensors=tensors, catalog=catalog)
