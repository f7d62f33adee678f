"""The centralized reference: the same MF model and BPR loss, trained on all data at once.

Every federated result is compared against this on the same seeded split. It uses Adam
and early stopping on validation NDCG@10 (full ranking), i.e. the strongest easy setting,
so that "close to centralized" is a demanding comparison, not a flattering one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from fedrec.shared.config import TrainConfig
from fedrec.shared.data.dataset import Split
from fedrec.shared.evaluation import evaluate_model
from fedrec.shared.models.mf import MatrixFactorization
from fedrec.shared.training import bpr_loss

logger = logging.getLogger(__name__)


@dataclass
class CentralResult:
    """The trained model (best validation epoch) and the per-epoch history."""

    model: MatrixFactorization
    best_epoch: int
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0


def score_fn_of(
    model: MatrixFactorization, device: torch.device
) -> Callable[[np.ndarray], np.ndarray]:
    """A ``users -> [B, n_items]`` score function for :func:`evaluate_model`."""

    def score(users: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model.score_all(torch.as_tensor(users, device=device)).cpu().numpy()

    return score


def train_central(
    split: Split,
    *,
    train: TrainConfig,
    epochs: int = 30,
    learning_rate: float = 0.005,
    weight_decay: float = 0.0,
    batch_size: int = 512,
    patience: int = 5,
    seed: int = 42,
    device: torch.device | None = None,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> CentralResult:
    """Train with Adam; keep the epoch with the best validation NDCG@10 (full ranking)."""
    device = device or torch.device("cpu")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(int(seed))
    model = MatrixFactorization(split.n_users, split.n_items, train.embedding_dim).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=learning_rate, weight_decay=weight_decay)
    users = torch.as_tensor(split.train.users, dtype=torch.long)
    items = torch.as_tensor(split.train.items, dtype=torch.long)
    best, best_epoch, best_state, stale = -1.0, 0, None, 0
    history: list[dict[str, float]] = []
    t0 = time.perf_counter()
    for epoch in range(1, epochs + 1):
        model.train()
        perm = torch.randperm(len(items), generator=gen)
        total = 0.0
        for start in range(0, len(perm), batch_size):
            idx = perm[start : start + batch_size]
            neg = torch.randint(split.n_items, (len(idx), train.num_negatives), generator=gen)
            batch_items = torch.cat([items[idx, None], neg], dim=1).to(device)
            opt.zero_grad(set_to_none=True)
            loss = bpr_loss(model(users[idx].to(device), batch_items)).mean()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        model.eval()
        val = evaluate_model(score_fn_of(model, device), split, k=10, target="valid", seed=seed)
        row = {
            "epoch": float(epoch),
            "train-loss": total / len(items),
            **{f"valid/{k}": v for k, v in val.items()},
        }
        history.append(row)
        if on_epoch is not None:
            on_epoch(row)
        score = val["ndcg@10_full"]
        if score > best:
            best, best_epoch, stale = score, epoch, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            stale += 1
            if stale >= patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    return CentralResult(
        model=model, best_epoch=best_epoch, history=history, seconds=time.perf_counter() - t0
    )
