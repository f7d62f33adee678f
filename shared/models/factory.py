"""Which model a run trains, built the same way on the server, the clients and in serving.

``text-tower`` picks plain MF (``off``), hybrid MF with trained heads over cached frozen
encoder embeddings (``heads``), or heads plus LoRA adapters on the encoder's user side
(``lora``). The server's round-0 tensors come from :func:`init_global`, seeded, so every
process agrees on the initial model.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from fedrec.shared.config import FedRecConfig
from fedrec.shared.models.encoder import TextEncoder, add_lora, lora_state
from fedrec.shared.models.hybrid import LORA_PREFIX, HybridMF, init_text_shared
from fedrec.shared.models.mf import MatrixFactorization, init_shared
from fedrec.shared.models.text_cache import catalogue_tokens, default_cache_dir, text_embeddings


def text_cache_dir(cfg: FedRecConfig) -> Path:
    """Where frozen text embeddings are cached: ``text-cache-dir``, else ~/.cache/fedrec.

    Entries are keyed by a hash of model and texts, so one cache serves every run.
    """
    return Path(cfg.text.text_cache_dir) if cfg.text.text_cache_dir else default_cache_dir()


def item_text_embeddings(
    cfg: FedRecConfig, texts: Sequence[str], device: torch.device | None = None
) -> np.ndarray:
    """The frozen encoder's embeddings of the catalogue texts (cached on disk)."""
    return text_embeddings(
        texts, text_cache_dir(cfg), max_length=cfg.text.text_max_length, device=device
    )


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


def init_global(cfg: FedRecConfig, n_items: int) -> dict[str, np.ndarray]:
    """The seeded round-0 global tensors of the model ``cfg`` asks for."""
    dim, seed = cfg.train.embedding_dim, cfg.data.seed
    shared = init_shared(n_items, dim, seed=seed)
    if cfg.text.text_tower == "off":
        return shared
    shared.update(init_text_shared(dim, seed=seed, item_head=cfg.text.item_head))
    if cfg.text.text_tower == "lora":
        encoder = _lora_encoder(cfg, seed)
        for name, p in lora_state(encoder).items():
            shared[LORA_PREFIX + name] = p.detach().numpy().astype(np.float32, copy=True)
    return shared
