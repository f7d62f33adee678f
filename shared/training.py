"""BPR training of the MF model: the local step every client runs, with or without DP-SGD.

Negatives are drawn uniformly from the whole catalogue (not from the items the user did
*not* touch): a sample then depends on its own record and public randomness only, which
is what record-level DP-SGD's per-sample sensitivity needs. An occasional "negative" that
is really a positive is the price, and is standard in uniform negative sampling.
"""

from __future__ import annotations

import logging
import secrets
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from fedrec.shared.config import PrivacyConfig, TrainConfig
from fedrec.shared.models.mf import MatrixFactorization
from fedrec.shared.privacy import HistoryEntry, epsilon_of, history_of, make_accountant

logger = logging.getLogger(__name__)


def bpr_loss(scores: torch.Tensor) -> torch.Tensor:
    """Per-sample BPR loss for scores ``[B, 1 + n_neg]`` (column 0 is the positive)."""
    return -F.logsigmoid(scores[:, :1] - scores[:, 1:]).mean(dim=1)


class BPRCriterion(torch.nn.Module):
    """A model's per-sample loss as a criterion with a ``reduction``.

    Opacus' ghost clipping wraps a ``criterion(output, target)``; the model's
    ``per_sample_loss`` (plain BPR for MF, BPR + text alignment for the hybrid) says how to
    read its own output. Without a model, the output is taken as BPR scores.
    """

    def __init__(self, reduction: str = "mean", model: MatrixFactorization | None = None) -> None:
        super().__init__()
        self.reduction = reduction
        self._per_sample = model.per_sample_loss if model is not None else bpr_loss

    def forward(self, scores: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
        """Per-sample (``reduction="none"``), mean or summed loss; ``target`` is unused."""
        per_sample = self._per_sample(scores)
        if self.reduction == "none":
            return per_sample
        return per_sample.sum() if self.reduction == "sum" else per_sample.mean()


@dataclass(frozen=True)
class LocalResult:
    """What one local training run produced."""

    loss: float
    steps: int
    num_examples: int
    sample_rate: float
    accountant_history: list[HistoryEntry]
    epsilon: float | None


def _batches_with_negatives(
    users: torch.Tensor, pos: torch.Tensor, n_items: int, num_negatives: int, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    neg = torch.randint(n_items, (pos.shape[0], num_negatives), generator=gen, device="cpu")
    return users, torch.cat([pos[:, None], neg.to(pos.device)], dim=1)


def dp_plan(n_records: int, train: TrainConfig, privacy: PrivacyConfig) -> HistoryEntry:
    """The ``(noise_multiplier, sample_rate, steps)`` :func:`train_local` runs under DP.

    The expected Poisson batch is ``dp_sample_rate * n`` records; Opacus samples each record
    with probability ``1 / n_batches`` for ``n_batches`` steps per epoch.
    """
    batch = max(1, round(privacy.dp_sample_rate * n_records))
    n_batches = -(-n_records // batch)
    return (privacy.noise_multiplier, 1.0 / n_batches, train.local_epochs * n_batches)


def train_local(
    model: MatrixFactorization,
    users: np.ndarray,
    items: np.ndarray,
    *,
    train: TrainConfig,
    privacy: PrivacyConfig,
    accountant_history: Sequence[Sequence[float]] | None = None,
    seed: int = 0,
    device: torch.device | None = None,
    learning_rate: float | None = None,
) -> LocalResult:
    """Train ``model`` in place on ``(users[k], items[k])`` positive pairs with BPR + SGD.

    ``learning_rate`` overrides ``train.learning_rate`` (the round's scheduled rate). With
    ``train.proximal_mu > 0`` (FedProx) the shared item parameters are pulled towards their
    values at the start of this call after every step.

    With ``privacy.dp_enabled`` the model is wrapped by an Opacus PrivacyEngine (Poisson
    sampling, per-sample clipping to ``max_grad_norm``, Gaussian noise) and every trainable
    parameter -- user factors included -- goes through the DP optimizer. The accountant is
    restored from ``accountant_history`` so the returned epsilon covers all steps so far.
    """
    device = device or torch.device("cpu")
    model.to(device)
    n = int(len(items))
    if n == 0:
        raise ValueError("a client with no training interactions cannot train")
    gen = torch.Generator().manual_seed(int(seed))
    data = TensorDataset(
        torch.as_tensor(users, dtype=torch.long), torch.as_tensor(items, dtype=torch.long)
    )
    # Under DP the batch is set by the sampling rate (Opacus then Poisson-samples each record
    # with probability 1/len(loader) ~ dp_sample_rate); without DP by batch-size.
    batch = max(1, round(privacy.dp_sample_rate * n)) if privacy.dp_enabled else train.batch_size
    # (dp_plan states the same arithmetic for budget checks before training.)
    loader = DataLoader(data, batch_size=batch, shuffle=True, generator=gen)
    lr = float(learning_rate if learning_rate is not None else train.learning_rate)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer: torch.optim.Optimizer = (
        torch.optim.Adam(trainable, lr=lr)
        if train.client_optimizer == "adam"
        else torch.optim.SGD(trainable, lr=lr)
    )
    n_items = model.item.num_embeddings
    shared_params = model.shared_parameters()
    if hasattr(model, "dropout_generator"):
        model.dropout_generator = torch.Generator().manual_seed(int(seed) + 2)
    anchors = [p.detach().clone() for p in shared_params] if train.proximal_mu > 0 else []

    accountant = None
    module: torch.nn.Module = model
    criterion: Any = None  # Opacus' ghost-clipping loss wrapper, when used
    if privacy.dp_enabled:
        from opacus import PrivacyEngine

        with warnings.catch_warnings():
            # secure_mode=False is Opacus' simulation setting; the warning is logged once below.
            warnings.simplefilter("ignore")
            engine = PrivacyEngine(accountant="rdp", secure_mode=False)
        engine.accountant = make_accountant(accountant_history)
        private: dict[str, Any] = {
            "module": model,
            "optimizer": optimizer,
            "data_loader": loader,
            "noise_multiplier": privacy.noise_multiplier,
            "max_grad_norm": privacy.max_grad_norm,
            "poisson_sampling": True,
            "noise_generator": torch.Generator(device=device).manual_seed(
                int(seed) + 1 if privacy.reproducible_noise else secrets.randbits(63)
            ),
        }
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if privacy.grad_sample_mode == "ghost":
                # Ghost clipping: per-sample gradient *norms* without materialising per-sample
                # gradients, which for an embedding table are [batch, n_items, dim] dense.
                module, optimizer, criterion, loader = engine.make_private(
                    **private, criterion=BPRCriterion(model=model), grad_sample_mode="ghost"
                )
            else:
                module, optimizer, loader = engine.make_private(**private)
        accountant = engine.accountant

    module.train()
    total, steps = 0.0, 0
    for _ in range(train.local_epochs):
        for u, pos in loader:
            u, batch_items = _batches_with_negatives(u, pos, n_items, train.num_negatives, gen)
            optimizer.zero_grad(set_to_none=True)
            # An empty Poisson batch is still a step (noise added, accountant stepped):
            # skipping it would misstate the sampling the accountant assumes.
            if privacy.dp_enabled and u.shape[0] == 0:
                # Ghost clipping (and a transformer) cannot run an empty batch; its clipped
                # sum is zero, so the DP step is noise alone.
                for param in trainable:
                    param.grad = torch.zeros_like(param)
                    if criterion is None:  # per-sample mode clips what grad_sample holds
                        param.grad_sample = torch.zeros((0, *param.shape), device=param.device)
                loss_value = 0.0
            else:
                scores = module(u.to(device), batch_items.to(device))
                if criterion is not None:
                    loss = criterion(scores, scores.new_zeros(scores.shape[0]))
                else:
                    loss = model.per_sample_loss(scores).sum() / max(int(u.shape[0]), 1)
                with warnings.catch_warnings():
                    # Opacus' hooks fire on outputs only (inputs are indices): harmless.
                    warnings.simplefilter("ignore", UserWarning)
                    loss.backward()
                loss_value = float(loss.item())
            optimizer.step()
            if anchors:
                # The gradient of mu/2 ||w - w_global||^2, as its own step: it depends on no
                # record, so under DP it is post-processing (Opacus would drop a loss term
                # that is not per-sample anyway).
                with torch.no_grad():
                    for param, anchor in zip(shared_params, anchors, strict=True):
                        param.sub_(lr * train.proximal_mu * (param - anchor))
            total += loss_value * u.shape[0]
            steps += 1
    close = getattr(module, "_close", None)
    if privacy.dp_enabled and callable(close):
        close()  # remove Opacus hooks; the plain model keeps the trained weights

    sample_rate = 1.0 / len(loader)
    if accountant is None:
        return LocalResult(total / max(n * train.local_epochs, 1), steps, n, sample_rate, [], None)
    history = history_of(accountant)
    eps = epsilon_of(history, privacy.target_delta)
    return LocalResult(
        loss=total / max(n * train.local_epochs, 1),
        steps=steps,
        num_examples=n,
        sample_rate=sample_rate,
        accountant_history=history,
        epsilon=eps,
    )


def finetune_users(
    model: MatrixFactorization,
    users: np.ndarray,
    items: np.ndarray,
    *,
    train: TrainConfig,
    epochs: int,
    seed: int = 0,
) -> None:
    """Fit only the user factors with the item side frozen (no DP).

    Used for on-device personalisation before ranking. Its result must never feed later
    shared-parameter training: it is fit on all of the client's records without noise.
    """
    if epochs <= 0 or len(items) == 0:
        return
    gen = torch.Generator().manual_seed(int(seed))
    u_all = torch.as_tensor(users, dtype=torch.long)
    i_all = torch.as_tensor(items, dtype=torch.long)
    opt = torch.optim.SGD([model.user.weight], lr=train.learning_rate)
    n_items = model.item.num_embeddings
    frozen = [p for p in model.parameters() if p.requires_grad and p is not model.user.weight]
    for p in frozen:
        p.requires_grad_(False)
    was_training = model.training
    model.eval()  # no item-factor dropout: rank and fit with the items as they will be scored
    try:
        for _ in range(epochs):
            perm = torch.randperm(len(i_all), generator=gen)
            for start in range(0, len(perm), train.batch_size):
                idx = perm[start : start + train.batch_size]
                u, batch_items = _batches_with_negatives(
                    u_all[idx], i_all[idx], n_items, train.num_negatives, gen
                )
                opt.zero_grad(set_to_none=True)
                bpr_loss(model.score(u, batch_items)).mean().backward()
                opt.step()
    finally:
        for p in frozen:
            p.requires_grad_(True)
        model.train(was_training)
