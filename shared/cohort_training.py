"""Record-level DP-SGD for a cohort: many clients' local runs as one batched computation.

Each member is trained exactly as :func:`fedrec.shared.training.train_local` trains one
client under DP -- its own copy of the global tensors, its own Poisson batches and
negatives, each sample's gradient clipped to ``dp-max-grad-norm``, the clipped sum noised with
the member's own CSPRNG stream and divided by the public ``dp-batch-size``, SGD, and
Opacus' RDP accountant stepped once per step -- but the members' samples go through one
forward and one backward pass, over the members' parameters stacked along a first axis.
Nothing is shared between members except the arithmetic: a sample reads and moves only its
own member's rows.

Per-sample gradient norms are computed in closed form, as Opacus' ghost clipping does:
autograd gives each sample's gradient with respect to the rows it read (the gathered
embedding rows, the user head's output); an embedding's per-sample norm sums the rows a
sample read more than once before squaring; a linear layer's is ``|grad_out| |input|``.
Under ``reproducible-noise`` a member draws the same stream, in the same order (batch
mask, negatives, then one noise draw split over the parameters in the model's order), as
``train_local``: the two give equal updates (tests/shared/test_cohort_training.py).

Supported: MF and MF with the text towers' user head (``text-tower = heads`` or ``off``,
``item-head = false``), SGD, FedProx, any sample rate. Anything else trains member by
member (:func:`supports`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from fedrec.shared.config import PrivacyConfig, TextConfig, TrainConfig
from fedrec.shared.models.initial import USER_HEAD_B, USER_HEAD_W
from fedrec.shared.privacy import (
    DPRandom,
    StepHistory,
    dp_random,
    epsilon_of,
    history_of,
    sample_rate,
    steps_per_epoch,
)
from fedrec.shared.training import LocalResult

# Stacked parameters one chunk of members may hold (float32 elements): bounds memory on
# large catalogues; members beyond it are trained in the next chunk.
MAX_STACKED_ELEMENTS = 16 * 2**20
_CLIP_EPS = 1e-6  # Opacus' per-sample clip factor: C / (norm + 1e-6), at most 1


@dataclass(frozen=True)
class MemberRun:
    """What one member brings to a cohort step: its factors, records, accountant, seed."""

    user_factors: np.ndarray  # [n_local_users, dim] float32
    users: np.ndarray  # local user index of each training record
    items: np.ndarray  # item of each training record
    accountant_history: Sequence[Sequence[float]]
    seed: int  # seeds the DP randomness only under reproducible-noise


@dataclass(frozen=True)
class MemberResult:
    """One member's trained factors, global tensors and training record."""

    user_factors: np.ndarray
    global_tensors: dict[str, np.ndarray]
    result: LocalResult


def supports(train: TrainConfig, privacy: PrivacyConfig, text: TextConfig) -> bool:
    """Whether :func:`train_cohort_local` trains these settings (else: one by one)."""
    return (
        privacy.dp_enabled
        and train.client_optimizer == "sgd"
        and text.text_tower in ("off", "heads")
        and not text.item_head
    )


@lru_cache(maxsize=256)
def _epsilon(history: tuple[tuple[float, float, int], ...], delta: float) -> float:
    return epsilon_of(history, delta)


@dataclass
class _Stack:
    """A chunk of members' parameters, stacked: member ``m`` owns index ``m`` of each."""

    user: torch.Tensor  # [sum of members' users, d]; member m owns rows offsets[m]:offsets[m+1]
    item: torch.Tensor  # [G, n, d]
    bias: torch.Tensor  # [G, n]
    head_w: torch.Tensor | None  # [G, d, T]
    head_b: torch.Tensor | None  # [G, d]
    offsets: list[int]

    def blocks(self, m: int) -> list[torch.Tensor]:
        """Member ``m``'s parameters in the model's parameter order (its noise order)."""
        out = [self.user[self.offsets[m] : self.offsets[m + 1]], self.item[m], self.bias[m]]
        if self.head_w is not None and self.head_b is not None:
            out += [self.head_w[m], self.head_b[m]]
        return out

    def shared(self) -> list[torch.Tensor]:
        """The stacked global parameters (FedProx pulls these towards their anchors)."""
        return [t for t in (self.item, self.bias, self.head_w, self.head_b) if t is not None]


def train_cohort_local(
    global_tensors: dict[str, np.ndarray],
    members: Sequence[MemberRun],
    *,
    train: TrainConfig,
    privacy: PrivacyConfig,
    text: TextConfig,
    item_text: np.ndarray | None,
    learning_rate: float,
    device: torch.device | None = None,
) -> list[MemberResult]:
    """Each member's local DP-SGD run from ``global_tensors``, in ``members``' order.

    ``item_text`` ``[n_items, 384]`` is the catalogue's text embeddings (public), needed
    with the user head (``text-tower = heads``).
    """
    if not supports(train, privacy, text):
        raise ValueError("these settings train member by member (see supports())")
    for member in members:
        if len(member.items) == 0:
            raise ValueError("a client with no training interactions cannot train")
    n, d = np.shape(global_tensors["item_factors"])
    per_member = n * (d + 1) + (d * (item_text.shape[1] + 1) if item_text is not None else 0)
    size = max(1, MAX_STACKED_ELEMENTS // max(per_member, 1))
    results: list[MemberResult] = []
    for start in range(0, len(members), size):
        results += _train_chunk(
            global_tensors,
            members[start : start + size],
            train=train,
            privacy=privacy,
            text=text,
            item_text=item_text,
            learning_rate=learning_rate,
            device=device or torch.device("cpu"),
        )
    return results


def _stack(
    global_tensors: dict[str, np.ndarray],
    members: Sequence[MemberRun],
    heads: bool,
    device: torch.device,
) -> _Stack:
    g = len(members)

    def tile(name: str) -> torch.Tensor:
        value = torch.as_tensor(np.asarray(global_tensors[name], dtype=np.float32), device=device)
        return value.unsqueeze(0).repeat(g, *([1] * value.dim()))

    counts = [len(m.user_factors) for m in members]
    return _Stack(
        user=torch.as_tensor(
            np.concatenate([np.asarray(m.user_factors, dtype=np.float32) for m in members]),
            device=device,
        ),
        item=tile("item_factors"),
        bias=tile("item_bias"),
        head_w=tile(USER_HEAD_W) if heads else None,
        head_b=tile(USER_HEAD_B) if heads else None,
        offsets=np.concatenate([[0], np.cumsum(counts)]).astype(int).tolist(),
    )


def _train_chunk(
    global_tensors: dict[str, np.ndarray],
    members: Sequence[MemberRun],
    *,
    train: TrainConfig,
    privacy: PrivacyConfig,
    text: TextConfig,
    item_text: np.ndarray | None,
    learning_rate: float,
    device: torch.device,
) -> list[MemberResult]:
    heads = text.text_tower == "heads"
    if heads and item_text is None:
        raise ValueError("text-tower=heads needs the catalogue's text embeddings")
    stack = _stack(global_tensors, members, heads, device)
    n_items = stack.item.shape[1]
    texts = torch.as_tensor(item_text, dtype=torch.float32, device=device) if heads else None
    text_sq = None if texts is None else texts.pow(2).sum(dim=1)  # |e_i|^2, per item
    rngs: list[DPRandom] = [
        dp_random(
            reproducible=privacy.reproducible_noise,
            seeds=(m.seed,),
            what="record-level DP-SGD",
        )
        for m in members
    ]
    accountants = [StepHistory(m.accountant_history) for m in members]
    users = [torch.as_tensor(m.users, dtype=torch.long) for m in members]
    items = [torch.as_tensor(m.items, dtype=torch.long) for m in members]
    anchors = [t.clone() for t in stack.shared()] if train.proximal_mu > 0 else []
    rate, steps = sample_rate(privacy), steps_per_epoch(privacy)
    std = privacy.dp_noise_multiplier * privacy.dp_max_grad_norm
    lr = float(learning_rate)
    losses = torch.zeros(len(members), dtype=torch.float64)
    sums = _zero_sums(stack)
    n_steps = 0
    for _ in range(train.local_epochs):
        for _ in range(steps):
            batch = _draw_batch(rngs, users, items, stack.offsets, rate, n_items, train)
            per_sample = _clipped_sums(stack, sums, batch, texts, text_sq, privacy, text)
            losses.index_add_(0, batch.member, per_sample.cpu().to(torch.float64))
            with torch.no_grad():
                for m, rng in enumerate(rngs):
                    noised = rng.add_normal_each(sums.blocks(m), std)
                    for param, grad in zip(stack.blocks(m), noised, strict=True):
                        grad /= privacy.dp_batch_size
                        param.add_(grad, alpha=-lr)
                for anchor, param in zip(anchors, stack.shared() if anchors else [], strict=True):
                    param.sub_(lr * train.proximal_mu * (param - anchor))
            for accountant in accountants:
                accountant.step(noise_multiplier=privacy.dp_noise_multiplier, sample_rate=rate)
            n_steps += 1
    out = []
    for m, member in enumerate(members):
        history = history_of(accountants[m])
        blocks = [t.detach().cpu().numpy() for t in stack.blocks(m)]
        tensors = {"item_factors": blocks[1].copy(), "item_bias": blocks[2].copy()}
        if heads:
            tensors.update({USER_HEAD_W: blocks[3].copy(), USER_HEAD_B: blocks[4].copy()})
        n_records = len(member.items)
        out.append(
            MemberResult(
                user_factors=blocks[0].copy(),
                global_tensors=tensors,
                result=LocalResult(
                    loss=float(losses[m]) / max(n_records * train.local_epochs, 1),
                    steps=n_steps,
                    num_examples=n_records,
                    sample_rate=rate,
                    accountant_history=history,
                    epsilon=_epsilon(tuple(history), privacy.dp_delta),
                ),
            )
        )
    return out


@dataclass(frozen=True)
class _Batch:
    member: torch.Tensor  # [S] the member each sample belongs to
    user_row: torch.Tensor  # [S] the sample's row of the stacked user factors
    items: torch.Tensor  # [S, 1 + negatives]: the positive, then the negatives
    bounds: list[int]  # member m's samples are bounds[m]:bounds[m + 1]


def _draw_batch(
    rngs: Sequence[DPRandom],
    users: Sequence[torch.Tensor],
    items: Sequence[torch.Tensor],
    offsets: Sequence[int],
    rate: float,
    n_items: int,
    train: TrainConfig,
) -> _Batch:
    """Every member's Poisson batch and negatives, drawn from its own stream."""
    members, rows, chosen = [], [], []
    bounds = [0]
    for m, rng in enumerate(rngs):
        n = len(items[m])
        if rate >= 1:
            idx = torch.arange(n)
        else:
            idx = torch.from_numpy(rng.bernoulli(rate, n)).nonzero().flatten()
        neg = rng.integers_torch(n_items, (int(idx.shape[0]), train.num_negatives))
        members.append(torch.full((int(idx.shape[0]),), m, dtype=torch.long))
        rows.append(users[m][idx] + offsets[m])
        chosen.append(torch.cat([items[m][idx][:, None], neg], dim=1))
        bounds.append(bounds[-1] + int(idx.shape[0]))
    return _Batch(
        member=torch.cat(members),
        user_row=torch.cat(rows),
        items=torch.cat(chosen),
        bounds=bounds,
    )


def _zero_sums(stack: _Stack) -> _Stack:
    """Buffers for the clipped sums, shaped as ``stack`` (reused from step to step)."""
    return _Stack(
        user=torch.zeros_like(stack.user),
        item=torch.zeros_like(stack.item),
        bias=torch.zeros_like(stack.bias),
        head_w=None if stack.head_w is None else torch.zeros_like(stack.head_w),
        head_b=None if stack.head_b is None else torch.zeros_like(stack.head_b),
        offsets=stack.offsets,
    )


def _clipped_sums(
    stack: _Stack,
    sums: _Stack,
    batch: _Batch,
    texts: torch.Tensor | None,
    text_sq: torch.Tensor | None,
    privacy: PrivacyConfig,
    text: TextConfig,
) -> torch.Tensor:
    """Write each member's sum of clipped per-sample gradients into ``sums``.

    Returns each sample's loss.
    """
    device = stack.item.device
    member, items = batch.member.to(device), batch.items.to(device)
    user_row = batch.user_row.to(device)
    for buffer in (sums.user, sums.item, sums.bias, sums.head_w, sums.head_b):
        if buffer is not None:
            buffer.zero_()
    if member.numel() == 0:
        return torch.zeros(0)
    spans = list(zip(batch.bounds, batch.bounds[1:], strict=False))
    n, d = stack.item.shape[1], stack.item.shape[2]
    flat = (member[:, None] * n + items).reshape(-1)  # each read row of the stacked tables
    p = stack.user.index_select(0, user_row).requires_grad_()
    q = stack.item.view(-1, d).index_select(0, flat).view(*items.shape, d).requires_grad_()
    b = stack.bias.view(-1).index_select(0, flat).view(items.shape).requires_grad_()
    scores = torch.einsum("bd,bmd->bm", p, q) + b
    loss = -F.logsigmoid(scores[:, :1] - scores[:, 1:]).mean(dim=1)
    leaves = [p, q, b]
    heads = stack.head_w is not None and stack.head_b is not None and texts is not None
    positives = items[:, 0]
    if heads:
        assert stack.head_w is not None and stack.head_b is not None and texts is not None
        # The user head's output per sample, member by member (each reads its own head;
        # the positives' texts are gathered one member's block at a time).
        pred = torch.empty(p.shape, dtype=p.dtype, device=device)
        with torch.no_grad():
            for m, (lo, hi) in enumerate(spans):
                if hi > lo:
                    torch.addmm(
                        stack.head_b[m], texts[positives[lo:hi]], stack.head_w[m].T, out=pred[lo:hi]
                    )
        pred.requires_grad_()
        align = (pred - p.detach()).pow(2).sum(dim=-1)
        loss = loss + text.text_align_weight * align
        leaves.append(pred)
    grads = torch.autograd.grad(loss.sum(), leaves)
    gp, gq, gb = grads[0], grads[1], grads[2]
    # An embedding's per-sample gradient: the rows a sample read, duplicates summed.
    same = (items[:, :, None] == items[:, None, :]).to(gq.dtype)
    sq = (gp * gp).sum(dim=1)
    sq = sq + (same * torch.bmm(gq, gq.transpose(1, 2))).sum(dim=(1, 2))
    sq = sq + (same * (gb[:, :, None] * gb[:, None, :])).sum(dim=(1, 2))
    if heads:
        assert text_sq is not None
        gy = grads[3]
        # A linear layer's per-sample norm: |grad out|^2 (|input|^2 + 1 for the bias).
        sq = sq + (gy * gy).sum(dim=1) * (text_sq[positives] + 1.0)
    clip = (privacy.dp_max_grad_norm / (sq.sqrt() + _CLIP_EPS)).clamp(max=1.0)
    with torch.no_grad():
        sums.user.index_add_(0, user_row, clip[:, None] * gp)
        sums.item.view(-1, d).index_add_(0, flat, (clip[:, None, None] * gq).reshape(-1, d))
        sums.bias.view(-1).index_add_(0, flat, (clip[:, None] * gb).reshape(-1))
        if heads:
            assert sums.head_w is not None and sums.head_b is not None and texts is not None
            gy = clip[:, None] * grads[3]
            for m, (lo, hi) in enumerate(spans):
                if hi > lo:
                    torch.mm(gy[lo:hi].T, texts[positives[lo:hi]], out=sums.head_w[m])
            sums.head_b.index_add_(0, member, gy)
    return loss.detach()
