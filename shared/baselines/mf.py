"""Centralized MF/BPR: the project's own model and loss, trained on all data at once.

A thin :class:`~fedrec.shared.baselines.base.Recommender` over
:func:`fedrec.shared.central.train_central` (Adam, uniform negatives, the epoch with the best
validation NDCG@10 kept), so that dimension, learning rate and weight decay can be tuned on
validation like every other baseline.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch

from fedrec.shared.baselines.base import Recommender
from fedrec.shared.central import train_central
from fedrec.shared.config import TrainConfig
from fedrec.shared.data.dataset import Split
from fedrec.shared.errors import NotFittedError
from fedrec.shared.models.mf import MatrixFactorization

logger = logging.getLogger(__name__)


class CentralMF(Recommender):
    """MF with BPR loss, early-stopped on validation NDCG@10 (full ranking)."""

    name = "mf"

    def __init__(
        self,
        *,
        dim: int = 32,
        learning_rate: float = 0.005,
        weight_decay: float = 0.0,
        epochs: int = 40,
        patience: int = 5,
        num_negatives: int = 4,
        batch_size: int = 512,
        seed: int = 42,
        num_threads: int = 1,
    ) -> None:
        super().__init__()
        if epochs < 1 or patience < 1:
            raise ValueError(f"epochs and patience must be >= 1, got {epochs}, {patience}")
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
        if num_threads < 1:
            raise ValueError(f"num_threads must be >= 1, got {num_threads}")
        self.train = TrainConfig(embedding_dim=dim, num_negatives=num_negatives)
        self.learning_rate = float(learning_rate)
        self.weight_decay = float(weight_decay)
        self.epochs = int(epochs)
        self.patience = int(patience)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.num_threads = int(num_threads)
        self._model: MatrixFactorization | None = None
        self._best_epoch = 0
        self._epochs_run = 0

    def params(self) -> dict[str, Any]:
        """Dimension, Adam's learning rate and weight decay, the epoch cap and patience."""
        return {
            "dim": self.train.embedding_dim,
            "learning_rate": self.learning_rate,
            "weight_decay": self.weight_decay,
            "max_epochs": self.epochs,
            "patience": self.patience,
        }

    def fitted(self) -> dict[str, Any]:
        """The epoch kept (best validation NDCG@10) and how many ran before stopping."""
        return {"best_epoch": self._best_epoch, "epochs_run": self._epochs_run}

    def _fit(self, split: Split) -> None:
        # Batches of a few thousand embedding rows gain nothing from intra-op threads, and
        # idle-spinning threads slow the run down many times over when the cores are shared.
        threads = torch.get_num_threads()
        torch.set_num_threads(self.num_threads)
        try:
            result = train_central(
                split,
                train=self.train,
                epochs=self.epochs,
                learning_rate=self.learning_rate,
                weight_decay=self.weight_decay,
                batch_size=self.batch_size,
                patience=self.patience,
                seed=self.seed,
            )
        finally:
            torch.set_num_threads(threads)
        result.model.eval()
        self._model = result.model
        self._best_epoch = result.best_epoch
        self._epochs_run = len(result.history)

    def _score(self, users: np.ndarray) -> np.ndarray:
        if self._model is None:
            raise NotFittedError("mf: call fit(split) before score(users)")
        with torch.no_grad():
            scores = self._model.score_all(torch.as_tensor(users, dtype=torch.long))
        return scores.numpy().astype(np.float64)
