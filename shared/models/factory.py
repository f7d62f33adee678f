"""Which model a run trains, built the same way on the server, the clients and in serving.

``text-tower`` picks plain MF (``off``), hybrid MF with trained heads over cached frozen
encoder embeddings (``heads``), or heads plus LoRA adapters on the encoder's user side
(``lora``). The server's round-0 tensors come from :func:`init_global`, seeded, so every
process agrees on the initial model.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from fedrec.shared.config import FedRecConfig
from fedrec.shared.models.encoder import TextEncoder, add_lora
from fedrec.shared.models.hybrid import HybridMF
from fedrec.shared.models.initial import init_global as init_global
from fedrec.shared.models.mf import MatrixFactorization
from fedrec.shared.models.text_cache import catalogue_tokens, item_text_embeddings


def _lora_encoder(cfg: FedRecConfig, seed: int) -> TextEncoder:
    encoder = TextEncoder(max_length=cfg.text.text_max_length)
    # Adapters start identical everywhere (LoRA's B is zero, A is drawn from this seed).
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        add_lora(encoder, rank=cfg.text.lora_rank, top_layers=cfg.text.lora_layers)
    return encoder


def make_model(
    cfg: FedRecConfig,
    n_users: int,
    texts: Sequence[str],
    *,
    device: torch.device | None = None,
) -> MatrixFactorization:
    """The local model for ``n_users`` users over a catalogue described by ``texts``."""
    dim = cfg.train.embedding_dim
    if cfg.text.text_tower == "off":
        return MatrixFactorization(n_users, len(texts), dim)
    emb = item_text_embeddings(cfg, texts, device=device)
    encoder, tokens = None, None
    if cfg.text.text_tower == "lora":
        encoder = _lora_encoder(cfg, cfg.data.seed)
        tokens = catalogue_tokens(texts, max_length=encoder.max_length)
    return HybridMF(
        n_users,
        len(texts),
        dim,
        emb,
        factor_dropout=cfg.text.item_factor_dropout,
        item_head=cfg.text.item_head,
        align_weight=cfg.text.text_align_weight,
        user_encoder=encoder,
        item_tokens=tokens,
    )
