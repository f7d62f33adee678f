"""The hybrid model: matrix factorisation plus text towers over all-MiniLM-L6-v2.

Words, used the same way everywhere: the *text towers* are the feature (the encoder and the
trained heads that map a text into the MF spaces; ``text-tower = heads | lora | off``);
the *hybrid* is the MF model with them (:class:`HybridMF`); the *user head* and the *item
head* are the two towers' trained parts; the *text map* is how the service places a new
item (not a tower: it is fitted on the released model, :mod:`fedrec.server.text_map`).

- Item head (``item-head = true`` only): ``v_i = q_i + W_i e_i`` and ``b_i = b_free_i +
  w_b . e_i`` where ``e_i`` is the item's text embedding. Without it (the default) items
  are scored by ``q_i`` and ``b_i`` alone, as in MF; the service places new items from text
  by a map fitted on the trained table (``fedrec.server.text_map``).
- User head: ``t(x) = W_u e(x)`` maps a text into the space of the private user factors.
  It is trained per record: for an interaction ``(u, i)`` it regresses the (DP-trained)
  private factor ``p_u`` from the liked item's text ``e_i``. A new user is then placed from
  the texts of the items they like, or from free text describing their interests.

Why per record: record-level DP-SGD needs each sample's loss to depend on one record (and
on public data and current parameters). A user text built from *several* liked items would
make one sample depend on many records; here every sample reads one item's public text
and the current parameters only, so the per-sample clipping bound holds for every trained
tensor. The encoder's user-side LoRA adapters (``text-tower = lora``) are trained the same
way, on the positive item's text of each sample.

``forward`` returns the ranking scores plus one extra column, the per-sample alignment
loss, because Opacus' ghost clipping wraps a single ``criterion(output)``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fedrec.shared.models.encoder import TEXT_DIM, TextEncoder, Tokens, lora_state
from fedrec.shared.models.initial import (
    ITEM_HEAD_B,
    ITEM_HEAD_W,
    LORA_PREFIX,
    USER_HEAD_B,
    USER_HEAD_W,
)
from fedrec.shared.models.mf import MatrixFactorization


def hybrid_item_vectors(
    factors: torch.Tensor,
    bias: torch.Tensor,
    text: torch.Tensor,
    item_head: Callable[[torch.Tensor], torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Hybrid item vectors ``q_i + W_i e_i`` ``[..., d]`` and biases ``b_i + w_b . e_i`` ``[...]``.

    ``item_head`` maps text embeddings ``e`` ``[..., 384]`` to ``[..., d + 1]``: the module
    in training (so Opacus sees the layer's call), the released tensors in serving. The one
    definition both use; without an item head an item is its factor and bias.
    """
    h = item_head(text)
    return factors + h[..., :-1], bias + h[..., -1]


class HybridMF(MatrixFactorization):
    """MF whose item vectors and biases get a text part, plus a text -> user head."""

    # Registered buffers (nn.Module's __getattr__ types them ``Tensor | Module``); the token
    # buffers exist in LoRA mode only.
    item_text: torch.Tensor
    item_input_ids: torch.Tensor
    item_attention_mask: torch.Tensor

    def __init__(
        self,
        n_users: int,
        n_items: int,
        dim: int,
        item_text: np.ndarray | torch.Tensor,
        *,
        factor_dropout: float = 0.0,
        align_weight: float = 0.1,
        init_std: float = 0.1,
        user_encoder: TextEncoder | None = None,
        item_tokens: Tokens | None = None,
        item_head: bool = True,
    ) -> None:
        super().__init__(n_users, n_items, dim, init_std=init_std)
        text = torch.as_tensor(np.asarray(item_text), dtype=torch.float32)
        if text.shape != (n_items, TEXT_DIM):
            raise ValueError(f"item_text must be [{n_items}, {TEXT_DIM}], got {tuple(text.shape)}")
        self.register_buffer("item_text", text)
        # Without an item head (item-head = false) items are scored by their factors alone:
        # warm users get exactly MF's scores, and there is no text to drop factors for.
        self.item_head = nn.Linear(TEXT_DIM, dim + 1) if item_head else None
        self.user_head = nn.Linear(TEXT_DIM, dim)
        self.dim = dim
        self.factor_dropout = float(factor_dropout) if item_head else 0.0
        self.align_weight = float(align_weight)
        # Draws the dropout mask's uniforms for a shape; training sets it (under DP from the
        # same secret source as the noise), None falls back to torch's global generator.
        self.dropout_mask: Callable[[tuple[int, ...]], torch.Tensor] | None = None
        # LoRA mode: the user tower reads the positive item's text through the adapted
        # encoder instead of the cached frozen embedding.
        self.user_encoder = user_encoder
        if (user_encoder is None) != (item_tokens is None):
            raise ValueError("user_encoder and item_tokens go together")
        if item_tokens is not None:
            # Public inputs, not state (and possibly shared with other models: see
            # catalogue_tokens), so they stay out of state_dict and its in-place loads.
            self.register_buffer("item_input_ids", item_tokens.input_ids, persistent=False)
            self.register_buffer(
                "item_attention_mask", item_tokens.attention_mask, persistent=False
            )

    # -- towers ------------------------------------------------------------------------

    def user_text_vector(self, embeddings: torch.Tensor) -> torch.Tensor:
        """The user-space vector ``[B, d]`` of text embeddings ``[B, 384]``."""
        return self.user_head(embeddings)  # type: ignore[no-any-return]

    def _positive_text(self, positives: torch.Tensor) -> torch.Tensor:
        if self.user_encoder is None:
            return self.item_text[positives]
        ids, mask = self.item_input_ids[positives], self.item_attention_mask[positives]
        # The catalogue is padded to its longest text; this batch needs only its own longest
        # (padding is on the right and masked out, so the vectors are the same, for less work).
        length = max(int(mask.sum(dim=1).max()), 1)
        return self.user_encoder(ids[:, :length], mask[:, :length])  # type: ignore[no-any-return]

    def score(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Scores ``[B, m]``: ``p_u . (q_i + W_i e_i) + b_i + w_b . e_i`` (W: item head only)."""
        return self._scores(self.user(users), items)

    def _scores(self, p: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        q = self.item(items)
        b = self.item_bias(items).squeeze(-1)
        if self.training and self.factor_dropout > 0:
            # Item-factor dropout (as in DropoutNet): some items are scored by their text
            # alone, so the item head learns to stand in for a factor a new item lacks.
            # The mask depends on no record, so per-sample sensitivity is unchanged.
            shape = tuple(items.shape)
            draw = self.dropout_mask(shape) if self.dropout_mask is not None else torch.rand(shape)
            keep = (draw.to(items.device) >= self.factor_dropout).to(q.dtype)
            q = q * keep.unsqueeze(-1)
            b = b * keep
        if self.item_head is not None:
            q, b = hybrid_item_vectors(q, b, self.item_text[items], self.item_head)
        return torch.einsum("bd,bmd->bm", p, q) + b

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """``[B, m + 1]``: scores of :meth:`score`, then each sample's alignment loss."""
        # Each layer is called once per forward: Opacus' hooks expect that.
        p = self.user(users)
        scores = self._scores(p, items)
        target = p.detach()  # the head follows the factor, not the reverse
        pred = self.user_text_vector(self._positive_text(items[:, 0]))
        align = (pred - target).pow(2).sum(dim=-1)
        return torch.cat([scores, align.unsqueeze(1)], dim=1)

    def per_sample_loss(self, output: torch.Tensor) -> torch.Tensor:
        """BPR on the score columns + ``align_weight`` x the alignment column."""
        scores, align = output[:, :-1], output[:, -1]
        bpr = -F.logsigmoid(scores[:, :1] - scores[:, 1:]).mean(dim=1)
        return bpr + self.align_weight * align

    # -- global parameters -------------------------------------------------------------

    def _text_params(self) -> dict[str, torch.Tensor]:
        params: dict[str, torch.Tensor] = {
            USER_HEAD_W: self.user_head.weight,
            USER_HEAD_B: self.user_head.bias,
        }
        if self.item_head is not None:
            params.update({ITEM_HEAD_W: self.item_head.weight, ITEM_HEAD_B: self.item_head.bias})
        if self.user_encoder is not None:
            for name, p in lora_state(self.user_encoder).items():
                params[LORA_PREFIX + name] = p
        return params

    def shared_parameters(self) -> list[torch.Tensor]:
        """Item factors and biases, the heads, and the LoRA adapters when present."""
        extra = [p for p in self._text_params().values() if isinstance(p, nn.Parameter)]
        return [*super().shared_parameters(), *extra]

    def get_global(self) -> dict[str, np.ndarray]:
        """Item tensors plus the text towers' trainable tensors (copies)."""
        out = super().get_global()
        for name, p in self._text_params().items():
            out[name] = p.detach().cpu().numpy().astype(np.float32, copy=True)
        return out

    @torch.no_grad()
    def set_global(self, global_tensors: dict[str, np.ndarray]) -> None:
        """Load item tensors and text towers; every text tensor must be present."""
        super().set_global(global_tensors)
        params = self._text_params()
        missing = sorted(set(params) - set(global_tensors))
        if self.item_head is None and ITEM_HEAD_W in global_tensors:
            raise ValueError(
                "the global model has an item head: it was trained with item-head = true"
            )
        if missing:
            raise ValueError(
                f"the global model has no {', '.join(missing)}: it was trained with another "
                "text-tower setting"
            )
        for name, p in params.items():
            value = torch.as_tensor(global_tensors[name], dtype=torch.float32)
            if value.shape != p.shape:
                raise ValueError(f"{name}: {tuple(value.shape)} does not fit {tuple(p.shape)}")
            p.copy_(value.to(p.device))

    @torch.no_grad()
    def item_table(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every item's hybrid vector ``[n, d]`` and bias ``[n]`` (no dropout)."""
        if self.item_head is None:
            return self.item.weight.clone(), self.item_bias.weight[:, 0].clone()
        return hybrid_item_vectors(
            self.item.weight, self.item_bias.weight[:, 0], self.item_text, self.item_head
        )
