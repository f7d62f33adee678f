"""Run the centralized reference and write a servable checkpoint (kind ``central``)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from fedrec.shared.central import score_fn_of, train_central
from fedrec.shared.checkpoint import save_catalog, save_checkpoint
from fedrec.shared.config import resolve_config
from fedrec.shared.data import load_split
from fedrec.shared.device import resolve_device
from fedrec.shared.evaluation import evaluate_model

logger = logging.getLogger(__name__)


def run_central(
    overrides: dict[str, Any] | None = None,
    *,
    epochs: int = 40,
    learning_rate: float = 0.005,
    device: str = "auto",
) -> dict[str, Any]:
    """Train, evaluate on the test split, checkpoint; returns metrics and the run dir."""
    cfg = resolve_config({}, overrides)
    dataset, split = load_split(cfg.data)
    dev = resolve_device(device)

    def log_epoch(row: dict[str, float]) -> None:
        logger.info(
            "epoch %d | loss %.4f | valid NDCG@10 %.4f HR@10 %.4f",
            int(row["epoch"]),
            row["train-loss"],
            row["valid/ndcg@10_full"],
            row["valid/hr@10_full"],
        )

    result = train_central(
        split,
        train=cfg.train,
        epochs=epochs,
        learning_rate=learning_rate,
        seed=cfg.data.seed,
        device=dev,
        on_epoch=log_epoch,
    )
    test = evaluate_model(
        score_fn_of(result.model, dev), split, k=10, target="test", seed=cfg.data.seed
    )
    run_dir = Path(cfg.output.output_dir) / cfg.output.run_name
    save_catalog(run_dir, dataset.items)
    tensors = result.model.get_global()
    tensors["user_factors"] = result.model.get_users()  # central only: no user is private here
    save_checkpoint(
        run_dir,
        round=result.best_epoch,
        tensors=tensors,
        run_name=cfg.output.run_name,
        kind="central",
        config=cfg.to_run_config(),
        metrics={f"test/{k}": v for k, v in test.items()},
        history=result.history,
        privacy=None,
    )
    logger.info("test: %s", {k: round(v, 4) for k, v in test.items()})
    return {
        "test": test,
        "run_dir": str(run_dir),
        "best_epoch": result.best_epoch,
        "seconds": result.seconds,
    }
