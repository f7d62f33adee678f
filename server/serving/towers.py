"""The text towers at serving time: the released heads and encoders, loaded from a checkpoint.

The item head places an item's text in the factor space through
:func:`~fedrec.shared.models.hybrid.hybrid_item_vectors`, the definition training uses;
the user head maps a user's text; the encoder (with the user tower's LoRA adapters when
trained with ``text-tower = lora``) turns texts into embeddings, one pass at a time.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from fedrec.server.serving.batching import Batcher
from fedrec.server.serving.explain import word_spans, words_of
from fedrec.shared.checkpoint import Checkpoint
from fedrec.shared.models.encoder import TEXT_DIM, TextEncoder, add_lora, lora_state
from fedrec.shared.models.hybrid import hybrid_item_vectors
from fedrec.shared.models.initial import (
    ITEM_HEAD_B,
    ITEM_HEAD_W,
    LORA_PREFIX,
    USER_HEAD_B,
    USER_HEAD_KEYS,
    USER_HEAD_W,
)
from fedrec.shared.models.text_cache import default_cache_dir, text_embeddings

# User-side texts whose readings are kept (a query asked again skips the encoder).
USER_CACHE_SIZE = 4096


@dataclass(frozen=True)
class UserText:
    """A user's text as the user tower reads it, from one encoder pass.

    ``without[i]`` is the text's embedding with ``words[i]``'s tokens left out of the mean,
    ``alone[i]`` the mean of that word's tokens (both unit norm, the word's tokens read in
    the context of the whole text): what an explanation weighs each word by.
    """

    embedding: np.ndarray  # [384]
    truncated: bool  # the encoder cut the text at its token limit
    words: tuple[str, ...]  # its content words (explain.words_of)
    without: np.ndarray  # [len(words), 384]
    alone: np.ndarray  # [len(words), 384]


def _tensor(array: np.ndarray) -> torch.Tensor:
    """A float32 CPU tensor holding a copy of ``array``."""
    return torch.from_numpy(np.array(array, np.float32))


class TextTowers:
    """The trained heads and the encoder(s), as numpy maps text -> factor space.

    Safe to call from many threads: encoder calls go through a :class:`Batcher`. User-side
    readings (:class:`UserText`) are kept for the last :data:`USER_CACHE_SIZE` distinct
    texts: a query seen again skips the encoder.
    """

    def __init__(
        self,
        tensors: dict[str, np.ndarray],
        *,
        max_length: int = 256,
        item_max_length: int = 64,
        lora: tuple[int, int] | None = None,
        device: torch.device | None = None,
        passes: int = 1,
    ) -> None:
        # No item head (item-head = false): items are their factors; new ones use the map.
        self._item_head: tuple[torch.Tensor, torch.Tensor] | None = None
        if ITEM_HEAD_W in tensors and ITEM_HEAD_B in tensors:
            self._item_head = (_tensor(tensors[ITEM_HEAD_W]), _tensor(tensors[ITEM_HEAD_B]))
        self.user_w, self.user_b = tensors[USER_HEAD_W], tensors[USER_HEAD_B]
        self.dim = int(self.user_w.shape[0])
        self.item_encoder = TextEncoder(max_length=item_max_length, device=device)
        self.user_encoder = self.item_encoder
        if lora is not None:
            # The user tower was trained through LoRA adapters: a second, adapted copy.
            self.user_encoder = TextEncoder(max_length=max_length)
            add_lora(self.user_encoder, rank=lora[0], top_layers=lora[1])
            with torch.no_grad():
                for name, p in lora_state(self.user_encoder).items():
                    p.copy_(torch.as_tensor(tensors[LORA_PREFIX + name]))
            if device is not None:
                self.user_encoder.to(device)
        self.max_length = max_length
        # Encoder passes at once, user and item side together (see Batcher).
        slots = threading.BoundedSemaphore(passes)
        self._user_batcher: Batcher[UserText] = Batcher(self._encode_user_now, slots, passes=passes)
        self._item_batcher: Batcher[bool] = Batcher(self._encode_items_now, slots, passes=passes)
        # (token limit, text) -> its reading, least recently used first.
        self._user_cache: OrderedDict[tuple[int, str], UserText] = OrderedDict()
        self._cache_lock = threading.Lock()
        self.user_cache_size = USER_CACHE_SIZE

    @property
    def has_item_head(self) -> bool:
        """Whether the model was trained with an item head (``item-head = true``)."""
        return self._item_head is not None

    def item_vectors(
        self, q: np.ndarray, b: np.ndarray, emb: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Served vectors ``[n, d]`` and biases ``[n]``: factors ``q``, ``b`` plus text part.

        ``emb`` holds the items' text embeddings; without an item head items are their factors.
        """
        if self._item_head is None:
            return q, b
        weight, bias = self._item_head
        with torch.no_grad():
            vq, vb = hybrid_item_vectors(
                _tensor(q), _tensor(b), _tensor(emb), lambda e: F.linear(e, weight, bias)
            )
        return vq.numpy(), vb.numpy()

    def item_part(self, emb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Text parts ``([n, d], [n])`` of item vectors and biases (zero without an item head)."""
        n = len(emb)
        return self.item_vectors(np.zeros((n, self.dim), np.float32), np.zeros(n, np.float32), emb)

    def user_part(self, emb: np.ndarray) -> np.ndarray:
        """User-space vectors ``[n, d]`` of text embeddings."""
        return emb @ self.user_w.T + self.user_b  # type: ignore[no-any-return]

    def encode_user(self, texts: Sequence[str]) -> tuple[np.ndarray, list[bool]]:
        """User-side embeddings (through the adapters, if any) and which texts were cut."""
        read = self.read_user(texts)
        if not read:
            return np.zeros((0, TEXT_DIM), np.float32), []
        return np.stack([r.embedding for r in read]), [r.truncated for r in read]

    def read_user(self, texts: Sequence[str]) -> list[UserText]:
        """Each text's :class:`UserText`, from the cache or one encoder pass for the rest."""
        limit = self.max_length
        found: dict[str, UserText] = {}
        with self._cache_lock:
            for text in texts:
                hit = self._user_cache.get((limit, text))
                if hit is not None:
                    self._user_cache.move_to_end((limit, text))
                    found[text] = hit
        missing = list(dict.fromkeys(t for t in texts if t not in found))
        if missing:
            _, read = self._user_batcher(missing)
            with self._cache_lock:
                for text, reading in zip(missing, read, strict=True):
                    found[text] = reading
                    self._user_cache[(limit, text)] = reading
                while len(self._user_cache) > self.user_cache_size:
                    self._user_cache.popitem(last=False)
        return [found[t] for t in texts]

    def encode_items(self, texts: Sequence[str]) -> np.ndarray:
        """Frozen item-side embeddings."""
        return self._item_batcher(texts)[0]

    def _encode_user_now(self, texts: list[str]) -> tuple[np.ndarray, list[UserText]]:
        """One pass of the user encoder over ``texts``, with each content word's parts."""
        words = [tuple(words_of(t)) for t in texts]
        groups = [[word_spans(t, w) for w in ws] for t, ws in zip(texts, words, strict=True)]
        # The user and item encoders may be one module: the user side's limit is per call.
        emb, truncated, parts = self.user_encoder.encode_parts(
            texts, groups, max_length=self.max_length
        )
        read = []
        for row, cut, ws, p in zip(emb, truncated, words, parts, strict=True):
            row, p = row.copy(), p.astype(np.float32)
            for a in (row, p):
                a.flags.writeable = False  # shared by every later cache hit
            read.append(UserText(row, bool(cut), ws, p[:, 0], p[:, 1]))
        return emb, read

    def _encode_items_now(self, texts: list[str]) -> tuple[np.ndarray, list[bool]]:
        return self.item_encoder.encode(texts), [False] * len(texts)


def towers_of(
    ckpt: Checkpoint,
    cache_dir: Path | None = None,
    device: torch.device | None = None,
    *,
    passes: int = 1,
) -> tuple[TextTowers | None, np.ndarray | None]:
    """The checkpoint's text towers and catalogue embeddings (``None``s without towers).

    ``passes``: encoder passes the towers may run at once (:class:`Batcher`).
    """
    tensors = ckpt.tensors
    if not all(k in tensors for k in USER_HEAD_KEYS):
        return None, None
    config: dict[str, Any] = ckpt.manifest.get("config", {})
    item_len = int(config.get("text-max-length", 64))
    lora = None
    if any(k.startswith(LORA_PREFIX) for k in tensors):
        lora = (int(config.get("lora-rank", 8)), int(config.get("lora-layers", 2)))
    towers = TextTowers(tensors, item_max_length=item_len, lora=lora, device=device, passes=passes)
    cache = cache_dir or Path(config.get("text-cache-dir") or default_cache_dir())
    emb = text_embeddings(ckpt.catalog.texts, cache, max_length=item_len, device=device)
    return towers, emb
