"""The global tensors' names and their seeded round-0 values, in numpy alone.

The server starts a run from :func:`init_global` and checks replies against these names;
it never builds a model, so it need not load torch. The models
(:mod:`~fedrec.shared.models.mf`, :mod:`~fedrec.shared.models.hybrid`) and the factory
import them from here.
"""

from __future__ import annotations

import numpy as np

from fedrec.shared.config import FedRecConfig
from fedrec.shared.models.text_cache import TEXT_DIM

SHARED_KEYS = ("item_factors", "item_bias")
"""Names of the global tensors, as sent over the wire and stored in checkpoints."""
ITEM_HEAD_W = "text.item_head.weight"
ITEM_HEAD_B = "text.item_head.bias"
USER_HEAD_W = "text.user_head.weight"
USER_HEAD_B = "text.user_head.bias"
HEAD_KEYS = (ITEM_HEAD_W, ITEM_HEAD_B, USER_HEAD_W, USER_HEAD_B)
USER_HEAD_KEYS = (USER_HEAD_W, USER_HEAD_B)  # present in every hybrid (item-head optional)
LORA_PREFIX = "text.lora."


def init_shared(
    n_items: int, dim: int, *, seed: int, init_std: float = 0.1
) -> dict[str, np.ndarray]:
    """Seeded initial global tensors (the server's round-0 model)."""
    rng = np.random.default_rng(seed)
    return {
        "item_factors": (rng.standard_normal((n_items, dim)) * init_std).astype(np.float32),
        "item_bias": np.zeros(n_items, dtype=np.float32),
    }


def init_user_factors(n_users: int, dim: int, *, seed: int, init_std: float = 0.1) -> np.ndarray:
    """Seeded initial private user factors."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n_users, dim)) * init_std).astype(np.float32)


def init_text_shared(
    dim: int, *, seed: int, std: float = 0.01, item_head: bool = True
) -> dict[str, np.ndarray]:
    """Seeded initial head tensors (the server's round-0 text towers)."""
    rng = np.random.default_rng([seed, 7])
    # Drawn even without an item head, so the user head starts the same either way.
    item_w = (rng.standard_normal((dim + 1, TEXT_DIM)) * std).astype(np.float32)
    out = {
        USER_HEAD_W: (rng.standard_normal((dim, TEXT_DIM)) * std).astype(np.float32),
        USER_HEAD_B: np.zeros(dim, dtype=np.float32),
    }
    if item_head:
        out.update({ITEM_HEAD_W: item_w, ITEM_HEAD_B: np.zeros(dim + 1, dtype=np.float32)})
    return out


def init_global(cfg: FedRecConfig, n_items: int) -> dict[str, np.ndarray]:
    """The seeded round-0 global tensors of the model ``cfg`` asks for."""
    dim, seed = cfg.train.embedding_dim, cfg.data.seed
    shared = init_shared(n_items, dim, seed=seed)
    if cfg.text.text_tower == "off":
        return shared
    shared.update(init_text_shared(dim, seed=seed, item_head=cfg.text.item_head))
    if cfg.text.text_tower == "lora":
        # The adapters' initial values are the encoder's own: only LoRA runs load it.
        from fedrec.shared.models.encoder import lora_state
        from fedrec.shared.models.factory import _lora_encoder

        encoder = _lora_encoder(cfg, seed)
        for name, p in lora_state(encoder).items():
            shared[LORA_PREFIX + name] = p.detach().numpy().astype(np.float32, copy=True)
    return shared
