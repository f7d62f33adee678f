"""BPR training of the MF model: the local step every client runs, with or without DP-SGD.

Negatives are drawn uniformly from the whole catalogue (not from the items the user did
*not* touch): a sample then depends on its own record and on randomness that no other
record changes, which is what record-level DP-SGD's per-sample sensitivity needs. An
occasional "negative" that is really a positive is the price, and is standard in uniform
negative sampling. Under DP that randomness is secret (a CSPRNG, as the noise is): drawn
from public seeds, the server would know every batch and negative.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from fedrec.shared.config import PrivacyConfig, TrainConfig
from fedrec.shared.models.hybrid import HybridMF
from fedrec.shared.models.mf import MatrixFactorization
from fedrec.shared.privacy import (
    HistoryEntry,
    dp_random,
    epsilon_of,
    history_of,
    sample_rate,
    steps_per_epoch,
)

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
    """What one local training run produced.

    ``loss`` and ``steps`` stay on the client under DP (they are computed from the records
    without noise); ``accountant_history`` and ``epsilon`` depend on public settings only.
    """

    loss: float
    steps: int
    num_examples: int
    sample_rate: float
    accountant_history: list[HistoryEntry]
    epsilon: float | None


NegativeDraw = Callable[[int, tuple[int, int]], torch.Tensor]  # (n_items, shape) -> ids


def _with_negatives(
    users: torch.Tensor, pos: torch.Tensor, n_items: int, num_negatives: int, draw: NegativeDraw
) -> tuple[torch.Tensor, torch.Tensor]:
    neg = draw(n_items, (pos.shape[0], num_negatives))
    return users, torch.cat([pos[:, None], neg.to(pos.device)], dim=1)


def _torch_negatives(gen: torch.Generator) -> NegativeDraw:
    return lambda n_items, shape: torch.randint(n_items, shape, generator=gen, device="cpu")


def _minibatches(
    n: int, batch_size: int, epochs: int, gen: torch.Generator
) -> Iterator[torch.Tensor]:
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen)
        yield from perm.split(batch_size)


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
    ``train.proximal_mu > 0`` (FedProx) the global item parameters are pulled towards their
    values at the start of this call after every step.

    With ``privacy.dp_enabled`` every trainable parameter -- user factors included -- is
    trained by record-level DP-SGD (:func:`fedrec.shared.privacy.make_private`): Poisson
    batches of public shape, per-record clipping, CSPRNG noise, the sum divided by the
    public ``dp-batch-size``; negatives and dropout masks come from the same secure source.
    The accountant is restored from ``accountant_history`` so the returned epsilon covers
    all steps so far. ``seed`` seeds initialisation-free randomness only when DP is off or
    ``reproducible-noise`` is on.
    """
    # Opacus' machinery, imported here: the batched cohort trainer imports this module (for
    # LocalResult) and must not carry it.
    from fedrec.shared.privacy.record import PoissonBatches, PrivateTraining, make_private

    device = device or torch.device("cpu")
    model.to(device)
    n = int(len(items))
    if n == 0:
        raise ValueError("a client with no training interactions cannot train")
    users_t = torch.as_tensor(users, dtype=torch.long)
    items_t = torch.as_tensor(items, dtype=torch.long)
    lr = float(learning_rate if learning_rate is not None else train.learning_rate)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer: torch.optim.Optimizer = (
        torch.optim.Adam(trainable, lr=lr)
        if train.client_optimizer == "adam"
        else torch.optim.SGD(trainable, lr=lr)
    )
    n_items = model.item.num_embeddings
    shared_params = model.shared_parameters()
    anchors = [p.detach().clone() for p in shared_params] if train.proximal_mu > 0 else []

    private: PrivateTraining | None = None
    module: torch.nn.Module = model
    if privacy.dp_enabled:
        rng = dp_random(
            reproducible=privacy.reproducible_noise, seeds=(seed,), what="record-level DP-SGD"
        )
        private = make_private(
            model,
            optimizer,
            privacy=privacy,
            criterion=BPRCriterion(model=model),
            rng=rng,
            history=accountant_history,
        )
        module, optimizer = private.module, private.optimizer
        batches: Iterable[torch.Tensor] = (
            batch
            for _ in range(train.local_epochs)
            for batch in PoissonBatches(
                n, rate=sample_rate(privacy), steps=steps_per_epoch(privacy), rng=rng
            )
        )
        negatives: NegativeDraw = lambda high, shape: rng.integers_torch(high, shape)  # noqa: E731
        if isinstance(model, HybridMF):
            model.dropout_mask = rng.uniform_torch
    else:
        gen = torch.Generator().manual_seed(int(seed))
        batches = _minibatches(n, train.batch_size, train.local_epochs, gen)
        negatives = _torch_negatives(gen)
        if isinstance(model, HybridMF):
            dropout_gen = torch.Generator().manual_seed(int(seed) + 2)
            model.dropout_mask = lambda shape: torch.rand(shape, generator=dropout_gen)

    module.train()
    total, steps = 0.0, 0
    for idx in batches:
        u, batch_items = _with_negatives(
            users_t[idx], items_t[idx], n_items, train.num_negatives, negatives
        )
        optimizer.zero_grad(set_to_none=True)
        if private is not None and u.shape[0] == 0:
            # An empty Poisson batch is still a step (noise added, accountant stepped):
            # skipping it would misstate the sampling the accountant assumes. Ghost clipping
            # (and a transformer) cannot run an empty batch; its clipped sum is zero.
            for param in trainable:
                param.grad = torch.zeros_like(param)
                if private.criterion is None:  # per-sample mode clips what grad_sample holds
                    # Opacus' own attribute on a Parameter, which torch's stubs do not know.
                    param.grad_sample = torch.zeros(  # type: ignore[attr-defined]
                        (0, *param.shape), device=param.device
                    )
            loss_value = 0.0
        else:
            scores = module(u.to(device), batch_items.to(device))
            if private is not None and private.criterion is not None:
                loss = private.criterion(scores, scores.new_zeros(scores.shape[0]))
            elif private is not None:
                loss = model.per_sample_loss(scores).sum()
            else:
                loss = model.per_sample_loss(scores).mean()
            with warnings.catch_warnings():
                # Opacus' hooks fire on outputs only (inputs are indices): harmless.
                warnings.simplefilter("ignore", UserWarning)
                loss.backward()
            loss_value = float(loss.item()) / (u.shape[0] if private is not None else 1)
        optimizer.step()
        if anchors:
            # The gradient of mu/2 ||w - w_global||^2, as its own step: it depends on no
            # record, so under DP it is post-processing (Opacus would drop a loss term
            # that is not per-sample anyway).
            with torch.no_grad():
                for shared, anchor in zip(shared_params, anchors, strict=True):
                    shared.sub_(lr * train.proximal_mu * (shared - anchor))
        total += loss_value * u.shape[0]
        steps += 1
    if private is not None:
        private.close()  # remove Opacus hooks; the plain model keeps the trained weights
    if isinstance(model, HybridMF):
        model.dropout_mask = None

    mean_loss = total / max(n * train.local_epochs, 1)
    if private is None:
        return LocalResult(mean_loss, steps, n, 1.0, [], None)
    history = history_of(private.accountant)
    return LocalResult(
        loss=mean_loss,
        steps=steps,
        num_examples=n,
        sample_rate=sample_rate(privacy),
        accountant_history=history,
        epsilon=epsilon_of(history, privacy.dp_delta),
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
                u, batch_items = _with_negatives(
                    u_all[idx], i_all[idx], n_items, train.num_negatives, _torch_negatives(gen)
                )
                opt.zero_grad(set_to_none=True)
                bpr_loss(model.score(u, batch_items)).mean().backward()
                opt.step()
    finally:
        for p in frozen:
            p.requires_grad_(True)
        model.train(was_training)
