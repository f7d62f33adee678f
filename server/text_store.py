"""Item-text embeddings by content hash, kept in one npz file beside the run's journal.

Replaying admin-added items at start-up would otherwise run the encoder over every one of
their texts on every start. The key hashes the encoder, its token limit and the text, so
a changed text (or encoder) is never given a stale vector.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Callable, Collection, Sequence
from pathlib import Path

import numpy as np

from fedrec.shared.models.text_cache import MODEL_NAME, TEXT_DIM

logger = logging.getLogger(__name__)


class EmbeddingStore:
    """Embeddings ``[384]`` of item texts, looked up by :meth:`key`."""

    def __init__(self, path: Path, *, max_length: int) -> None:
        self.path = path
        self.max_length = max_length
        self._rows: dict[str, np.ndarray] = {}
        if path.is_file():
            try:
                with np.load(path, allow_pickle=False) as data:
                    keys, emb = data["keys"], data["emb"]
                if emb.shape != (len(keys), TEXT_DIM):
                    raise ValueError(f"shape {emb.shape} for {len(keys)} keys")
                self._rows = {str(k): row for k, row in zip(keys, emb, strict=True)}
            except (OSError, ValueError, KeyError) as err:
                logger.warning("ignoring unreadable embedding store %s (%s)", path, err)

    def key(self, text: str) -> str:
        """The content hash of ``text`` under this encoder and token limit."""
        raw = f"{MODEL_NAME}\0{self.max_length}\0{text}".encode("utf-8", "surrogatepass")
        return hashlib.sha256(raw).hexdigest()[:32]

    def __len__(self) -> int:
        return len(self._rows)

    def encode(
        self, texts: Sequence[str], encoder: Callable[[list[str]], np.ndarray]
    ) -> np.ndarray:
        """Embeddings of ``texts``: stored ones as they are, the rest in one ``encoder`` call."""
        keys = [self.key(t) for t in texts]
        missing = list(dict.fromkeys(k for k in keys if k not in self._rows))
        if missing:
            text_of = dict(zip(keys, texts, strict=True))
            fresh = encoder([text_of[k] for k in missing])
            self._rows.update(zip(missing, fresh.astype(np.float32), strict=True))
            self.save()
        if not keys:
            return np.zeros((0, TEXT_DIM), np.float32)
        return np.stack([self._rows[k] for k in keys])

    def retain(self, texts: Collection[str]) -> None:
        """Forget every embedding but those of ``texts`` (items no longer served)."""
        keep = {self.key(t) for t in texts}
        if keep != set(self._rows):
            self._rows = {k: v for k, v in self._rows.items() if k in keep}
            self.save()

    def save(self) -> None:
        """Write the store atomically (a crash leaves the old file, never half a new one)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(fd, "wb") as handle:
                keys = np.array(list(self._rows), dtype="U32")
                emb = np.stack(list(self._rows.values())) if self._rows else np.zeros((0, TEXT_DIM))
                np.savez(handle, keys=keys, emb=emb.astype(np.float32))
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
