"""Matrix factorisation with private user factors and global item factors.

``score(u, i) = p_u . q_i + b_i``. ``p_u`` (``user``) stays on the client that owns user
``u``; ``q`` (``item``) and ``b`` (``item_bias``) are the global parameters a federation
aggregates. The forward pass scores a positive and its negatives in one embedding call,
so Opacus sees each embedding layer used once per sample.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class MatrixFactorization(nn.Module):
    """MF scorer for ``n_users`` users (one on a cross-device client) and ``n_items`` items."""

    def __init__(self, n_users: int, n_items: int, dim: int, *, init_std: float = 0.1) -> None:
        super().__init__()
        self.user = nn.Embedding(n_users, dim)
        self.item = nn.Embedding(n_items, dim)
        self.item_bias = nn.Embedding(n_items, 1)
        nn.init.normal_(self.user.weight, std=init_std)
        nn.init.normal_(self.item.weight, std=init_std)
        nn.init.zeros_(self.item_bias.weight)

    def score(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Scores ``[B, m]`` of ``users [B]`` for ``items [B, m]``."""
        p = self.user(users)  # [B, d]
        q = self.item(items)  # [B, m, d]
        b = self.item_bias(items).squeeze(-1)  # [B, m]
        return torch.einsum("bd,bmd->bm", p, q) + b

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """What the training loss reads: here the scores of :meth:`score`."""
        return self.score(users, items)

    def per_sample_loss(self, output: torch.Tensor) -> torch.Tensor:
        """The per-sample training loss of a :meth:`forward` output (column 0: positive)."""
        return -F.logsigmoid(output[:, :1] - output[:, 1:]).mean(dim=1)

    def shared_parameters(self) -> list[torch.Tensor]:
        """The parameters a federation aggregates (everything but the user factors)."""
        return [self.item.weight, self.item_bias.weight]

    @torch.no_grad()
    def item_table(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every item's vector ``[n, d]`` and bias ``[n]`` as used for ranking."""
        return self.item.weight, self.item_bias.weight[:, 0]

    @torch.no_grad()
    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        """Scores ``[B, n_items]`` of ``users [B]`` for every item."""
        vectors, bias = self.item_table()
        return self.user(users) @ vectors.T + bias[None, :]

    # -- global parameters <-> numpy -------------------------------------------------

    def get_global(self) -> dict[str, np.ndarray]:
        """The global tensors as float32 numpy arrays (copies)."""
        return {
            "item_factors": self.item.weight.detach().cpu().numpy().astype(np.float32, copy=True),
            "item_bias": self.item_bias.weight.detach()
            .cpu()
            .numpy()[:, 0]
            .astype(np.float32, copy=True),
        }

    @torch.no_grad()
    def set_global(self, global_tensors: dict[str, np.ndarray]) -> None:
        """Load global tensors; shapes must match this model."""
        q = torch.as_tensor(global_tensors["item_factors"], dtype=torch.float32)
        b = torch.as_tensor(global_tensors["item_bias"], dtype=torch.float32)
        if q.shape != self.item.weight.shape or b.shape != (self.item.weight.shape[0],):
            raise ValueError(
                f"global tensors {tuple(q.shape)}/{tuple(b.shape)} do not fit a model with "
                f"{self.item.weight.shape[0]} items of dim {self.item.weight.shape[1]}"
            )
        self.item.weight.copy_(q.to(self.item.weight.device))
        self.item_bias.weight.copy_(b.to(self.item.weight.device)[:, None])

    def get_users(self) -> np.ndarray:
        """The user factors as a float32 array ``[n_users, dim]`` (copy)."""
        return self.user.weight.detach().cpu().numpy().astype(np.float32, copy=True)

    @torch.no_grad()
    def set_users(self, factors: np.ndarray) -> None:
        """Load user factors ``[n_users, dim]``."""
        t = torch.as_tensor(factors, dtype=torch.float32)
        if t.shape != self.user.weight.shape:
            raise ValueError(
                f"user factors {tuple(t.shape)} do not fit {tuple(self.user.weight.shape)}"
            )
        self.user.weight.copy_(t.to(self.user.weight.device))
