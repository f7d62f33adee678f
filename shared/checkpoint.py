"""Versioned checkpoints: safetensors for tensors + a JSON manifest, written atomically.

Layout of a run directory::

    <run_dir>/catalog.json                       items (public), written once per run
    <run_dir>/RUN_ID                             the run's identity, written once per run
    <run_dir>/checkpoints/round-00005/model.safetensors
    <run_dir>/checkpoints/round-00005/manifest.json
    <run_dir>/checkpoints/round-00005/server_state.safetensors   optimizer moments, if any
    <run_dir>/LATEST                             "round-00005", replaced last

A checkpoint is written into a temporary folder and renamed into place; ``LATEST`` is
replaced after that. A crash therefore leaves at worst an ignored temporary folder, never a
``LATEST`` pointing at half a checkpoint. Loading verifies the SHA-256 of the tensors and
of the catalogue against the manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file, save_file

from fedrec.shared.data.catalog_file import catalog_json
from fedrec.shared.data.dataset import ItemCatalog
from fedrec.shared.errors import CheckpointError

FORMAT = "fedrec-checkpoint/1"
FEDERATION_FILE = "federation.json"  # a simulated run's partition count


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_federation_info(run_dir: Path, num_partitions: int) -> None:
    """Record how many clients a simulated run used (needed to re-create partitions)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / FEDERATION_FILE).write_text(json.dumps({"num-partitions": num_partitions}))


def save_catalog(run_dir: Path, catalog: ItemCatalog) -> None:
    """Write the run's item catalogue once."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "catalog.json"
    text = catalog_json(catalog)
    if path.exists():
        if path.read_text() != text:
            raise CheckpointError(f"{path} holds another catalogue; use a new run directory")
        return
    path.write_text(text)


def run_id(run_dir: Path) -> str:
    """The run's identity: created with the run, before any client trains, kept on resume.

    Clients keep their private state and privacy ledger per run identity, so a new run
    never continues another's factors or budget, and a resumed one always finds its own.
    """
    path = Path(run_dir) / "RUN_ID"
    if path.exists():
        token = path.read_text().strip()
        if not token.isalnum():
            raise CheckpointError(f"{path} holds {token!r}, not a run identity")
        return token
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(16)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".RUN_ID.")
    with os.fdopen(fd, "w") as fh:
        fh.write(token)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return token


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
    server_state: Mapping[str, np.ndarray] | None = None,
    user_privacy: Mapping[str, Any] | None = None,
) -> Path:
    """Write a checkpoint atomically, then point LATEST at it.

    ``server_state`` holds what the server needs to continue exactly (e.g. FedAdam's
    moments); it is stored beside the model, hashed, and never served. ``privacy`` is the
    record-level guarantee, ``user_privacy`` the user-level one (each ``None`` when off).
    """
    target = _round_dir(run_dir, round)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".tmp-"))
    save_file(
        {k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(tmp / "model.safetensors")
    )
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
        "user_privacy": dict(user_privacy) if user_privacy else None,
        "tensors": {
            "file": "model.safetensors",
            "sha256": _sha256(tmp / "model.safetensors"),
            "shapes": {k: list(v.shape) for k, v in tensors.items()},
        },
        "catalog_sha256": _sha256(run_dir / "catalog.json"),
        "n_items": int(tensors["item_factors"].shape[0]),
        "embedding_dim": int(tensors["item_factors"].shape[1]),
    }
    if server_state:
        save_file(
            {k: np.ascontiguousarray(v) for k, v in server_state.items()},
            str(tmp / "server_state.safetensors"),
        )
        manifest["server_state"] = {
            "file": "server_state.safetensors",
            "sha256": _sha256(tmp / "server_state.safetensors"),
        }
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
    if target.exists():
        shutil.rmtree(target)
    for f in tmp.iterdir():  # durable before it becomes visible
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
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
    text = latest.read_text().strip()
    try:
        return int(text.removeprefix("round-"))
    except ValueError:
        raise CheckpointError(
            f"{latest} holds {text!r}, not a round name like round-00005"
        ) from None


def list_rounds(run_dir: Path) -> list[int]:
    """Rounds with a complete checkpoint (a manifest), oldest first."""
    folder = Path(run_dir) / "checkpoints"
    if not folder.exists():
        return []
    return sorted(
        int(p.name.removeprefix("round-"))
        for p in folder.glob("round-*")
        if (p / "manifest.json").exists()
    )


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint."""

    path: Path
    manifest: dict[str, Any]
    tensors: dict[str, np.ndarray]
    catalog: ItemCatalog
    server_state: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def round(self) -> int:
        """The round (or epoch) this checkpoint was written at."""
        return int(self.manifest["round"])

    @property
    def model_version(self) -> str:
        """``<run_name>@r<round>``."""
        return str(self.manifest["model_version"])


def _newest_run(output_dir: Path) -> Path | None:
    """The run under ``output_dir`` whose latest checkpoint was created last."""
    best: tuple[str, Path] | None = None
    for run in sorted(p for p in output_dir.iterdir() if p.is_dir()):
        rnd = latest_round(run)
        if rnd is None:
            continue
        try:
            created = json.loads((_round_dir(run, rnd) / "manifest.json").read_text())["created_at"]
        except (OSError, ValueError, KeyError):
            continue
        if best is None or created > best[0]:
            best = (created, run)
    return best[1] if best else None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{path} is missing; the checkpoint is incomplete") from None
    except ValueError as err:
        raise CheckpointError(f"{path} is not valid JSON ({err}); the file is damaged") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} does not hold a JSON object")
    return data


def _checked(path: Path, expected: str | None, what: str) -> None:
    if not path.exists():
        raise CheckpointError(f"{path} is missing; the checkpoint is incomplete")
    if expected is not None and _sha256(path) != expected:
        raise CheckpointError(
            f"{path}: SHA-256 does not match the manifest; the {what} was changed or damaged "
            "after it was written -- restore it or load an earlier round"
        )


def checkpoint_dir(path: Path, *, round: int | None = None) -> Path:
    """The checkpoint folder :func:`load_checkpoint` would load, found without loading it.

    A checkpoint dir is itself; a run dir gives its LATEST (or ``round``); an output dir
    holding several runs gives the newest checkpoint across them.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path} does not exist")
    if (path / "manifest.json").exists():
        return path
    run_dir = path
    if latest_round(path) is None and round is None:
        newest = _newest_run(path) if path.is_dir() else None
        if newest is None:
            raise CheckpointError(f"no checkpoint under {path}")
        run_dir = newest
    rnd = round if round is not None else latest_round(run_dir)
    assert rnd is not None
    ckpt_dir = _round_dir(run_dir, rnd)
    if not ckpt_dir.exists():
        raise CheckpointError(f"{run_dir} has no checkpoint for round {rnd}")
    return ckpt_dir


def load_checkpoint(path: Path, *, round: int | None = None) -> Checkpoint:
    """Load a checkpoint from a checkpoint, run or output directory (:func:`checkpoint_dir`)."""
    ckpt_dir = checkpoint_dir(path, round=round)
    manifest = _read_json(ckpt_dir / "manifest.json")
    if manifest.get("format") != FORMAT:
        raise CheckpointError(f"{ckpt_dir}: unknown checkpoint format {manifest.get('format')!r}")
    tensor_path = ckpt_dir / manifest["tensors"]["file"]
    _checked(tensor_path, manifest["tensors"].get("sha256"), "model file")
    catalog_path = ckpt_dir.parent.parent / "catalog.json"
    _checked(catalog_path, manifest.get("catalog_sha256"), "item catalogue")
    tensors = load_file(str(tensor_path))
    cat = _read_json(catalog_path)["items"]
    catalog = ItemCatalog(
        raw_ids=[c["id"] for c in cat],
        titles=[c["title"] for c in cat],
        genres=[c["genres"] for c in cat],
        texts=[c["text"] for c in cat],
        years=[c["year"] for c in cat],
    )
    server_state: dict[str, np.ndarray] = {}
    if manifest.get("server_state"):
        state_path = ckpt_dir / manifest["server_state"]["file"]
        _checked(state_path, manifest["server_state"].get("sha256"), "server state file")
        server_state = load_file(str(state_path))
    return Checkpoint(
        path=ckpt_dir,
        manifest=manifest,
        tensors=tensors,
        catalog=catalog,
        server_state=server_state,
    )
