"""Helpers of the serving tests: tiny catalogues and checkpoints with known answers."""

from pathlib import Path

import numpy as np

from fedrec.server.serving import Recommender
from fedrec.shared.checkpoint import load_checkpoint, save_catalog, save_checkpoint
from fedrec.shared.config import FedRecConfig
from fedrec.shared.data.dataset import ItemCatalog


def numbered_catalog(n: int) -> ItemCatalog:
    """Items "0".."n-1" with no genres, their ids as titles and texts."""
    names = [str(i) for i in range(n)]
    return ItemCatalog(
        raw_ids=names, titles=names, genres=[[] for _ in names], texts=names, years=[None] * n
    )


def served(
    run: Path, catalog: ItemCatalog, tensors: dict[str, np.ndarray], cfg: FedRecConfig
) -> Recommender:
    """The serving model of a one-round, non-DP checkpoint of ``tensors`` saved in ``run``."""
    save_catalog(run, catalog)
    save_checkpoint(
        run,
        round=1,
        tensors=tensors,
        run_name=run.name,
        kind="federated",
        config=cfg.to_run_config(),
        metrics={},
        history=[{"round": 1}],
        privacy=None,
    )
    return Recommender.from_checkpoint(load_checkpoint(run))
