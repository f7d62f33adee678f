"""Evaluate a run's checkpoint on the test split, with coverage, genre diversity and novelty.

- ``central`` runs keep their user factors in the checkpoint.
- ``cooccurrence`` runs have no user factors: a user is the mean of its items' factors,
  computed on its device; here from the split's training items.
- ``federated`` runs keep them on the clients; in a *simulation* those client states are on
  this disk, so the evaluation visits each partition exactly as its client would
  (same data view, same on-device fit, same seeded negatives) and pools the per-user
  results. This is a simulation-only convenience; a real deployment gets only the
  aggregated metrics the clients report.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from fedrec.client.dataview import client_seed, load_client_data, state_dir
from fedrec.client.evaluation import local_user_evals
from fedrec.client.state import ClientStateStore
from fedrec.shared.central import score_fn_of
from fedrec.shared.checkpoint import FEDERATION_FILE, load_checkpoint
from fedrec.shared.config import config_of_checkpoint
from fedrec.shared.data import load_split
from fedrec.shared.errors import CheckpointError
from fedrec.shared.evaluation import evaluate_model, list_metrics, summarize
from fedrec.shared.models.mf import MatrixFactorization


def evaluate_run(path: Path, *, personalize_epochs: int = 5, k: int = 10) -> dict[str, Any]:
    """Test-split metrics of the newest checkpoint under ``path``."""
    ckpt = load_checkpoint(Path(path))
    cfg = config_of_checkpoint(ckpt.manifest["config"])
    dataset, split = load_split(cfg.data)
    genres = dataset.items.genres
    shared = {name: t for name, t in ckpt.tensors.items() if name != "user_factors"}
    if ckpt.manifest["kind"] == "central":
        shared = {name: shared[name] for name in ("item_factors", "item_bias")}
        model = MatrixFactorization(split.n_users, split.n_items, cfg.train.embedding_dim)
        model.set_global(shared)
        model.set_users(ckpt.tensors["user_factors"])
        metrics = evaluate_model(
            score_fn_of(model, model.item.weight.device),
            split,
            k=k,
            seed=cfg.data.seed,
            genres=genres,
        )
    elif ckpt.manifest["kind"] == "cooccurrence":
        from fedrec.simulation.cooccurrence import scores_of

        # Users rank on their devices (their items' mean factor); here pooled over users.
        metrics = evaluate_model(
            scores_of(shared, split, cfg.cooccurrence),
            split,
            k=k,
            seed=cfg.data.seed,
            genres=genres,
        )
    else:
        run_dir = ckpt.path.parent.parent
        info = run_dir / FEDERATION_FILE
        if not info.exists():
            raise CheckpointError(
                f"{run_dir} has no {FEDERATION_FILE}: only simulated federations keep the "
                "client states needed for this evaluation"
            )
        num = int(json.loads(info.read_text())["num-partitions"])
        evals = []
        for pid in range(num):
            data = load_client_data(cfg, pid, num)
            state = ClientStateStore(state_dir(cfg, pid, None)).load()
            evals += local_user_evals(
                cfg,
                data,
                shared,
                state,
                k=k,
                personalize_epochs=personalize_epochs,
                seed=client_seed(cfg, pid),
            )
        metrics = summarize(evals, k=k, n_items=split.n_items)
        counts = np.bincount(split.train.items, minlength=split.n_items)
        metrics |= list_metrics([e.top_k for e in evals], k=k, item_counts=counts, genres=genres)
    return {
        "model_version": ckpt.model_version,
        "kind": ckpt.manifest["kind"],
        "round": ckpt.round,
        "privacy": ckpt.manifest.get("privacy"),
        "metrics": metrics,
    }
