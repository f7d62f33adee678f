"""Frozen-encoder embeddings of a list of texts, computed once and cached on disk.

With the encoder frozen (the CPU default) an item's text embedding never changes, so every
client and the server read the same ``[n, 384]`` table instead of running the transformer
in every round. The file name is a hash of the model, the token limit and the texts, so a
changed catalogue can never be served stale vectors; files are written atomically, so
simulated clients starting together never read a half-written one.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fedrec.shared.config import FedRecConfig

# torch and the encoder are imported where texts are encoded: a process that only reads
# the cache (the server, the clients once it is written) does not load them.
if TYPE_CHECKING:
    import torch

    from fedrec.shared.models.encoder import Tokens

logger = logging.getLogger(__name__)

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
TEXT_DIM = 384  # the encoder's output size


def default_cache_dir() -> Path:
    """Where embeddings are cached when ``text-cache-dir`` is empty: ~/.cache/fedrec/."""
    return Path.home() / ".cache" / "fedrec" / "text-embeddings"


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


def cache_key(texts: Sequence[str], max_length: int) -> str:
    """A hex digest identifying (model, token limit, texts)."""
    digest = hashlib.sha256(f"{MODEL_NAME}\0{max_length}\0".encode())
    for text in texts:
        digest.update(text.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:24]


def _atomic_save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            np.save(handle, array)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def text_embeddings(
    texts: Sequence[str],
    cache_dir: Path | str,
    *,
    max_length: int = 64,
    device: torch.device | None = None,
) -> np.ndarray:
    """``[len(texts), 384]`` unit-norm embeddings, from ``cache_dir`` when already computed."""
    path = Path(cache_dir) / f"text-emb-{cache_key(texts, max_length)}.npy"
    return _load_or_encode(str(path), tuple(texts), max_length, str(device or "cpu"))


@functools.lru_cache(maxsize=4)
def _load_or_encode(path: str, texts: tuple[str, ...], max_length: int, device: str) -> np.ndarray:
    file = Path(path)
    if file.is_file():
        try:
            array = np.load(file)
            if array.shape == (len(texts), TEXT_DIM):
                return array  # type: ignore[no-any-return]
            logger.warning("ignoring %s: shape %s, expected %s", file, array.shape, len(texts))
        except (OSError, ValueError) as err:
            logger.warning("ignoring unreadable embedding cache %s (%s)", file, err)
    logger.info("encoding %d texts with %s (cached at %s)", len(texts), MODEL_NAME, file)
    import torch

    from fedrec.shared.models.encoder import TextEncoder

    encoder = TextEncoder(max_length=max_length, device=torch.device(device))
    array = encoder.encode(list(texts))
    _atomic_save(file, array)
    return array


def catalogue_tokens(texts: Sequence[str], *, max_length: int = 64) -> Tokens:
    """The catalogue's token ids, tokenised once per process (LoRA clients read them).

    Every simulated client of a process builds its model over the same catalogue; without
    this each one tokenised the whole catalogue again (the profile is in
    docs/benchmarks/README.md, "Reading encoder.md"). Callers must not modify the returned
    tensors in place.
    """
    return _tokens(tuple(texts), max_length)


@functools.lru_cache(maxsize=4)
def _tokens(texts: tuple[str, ...], max_length: int) -> Tokens:
    from fedrec.shared.models.encoder import load_tokenizer, tokenize

    return tokenize(load_tokenizer(), texts, max_length)
