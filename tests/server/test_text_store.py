"""The embedding store that spares a restart re-encoding every admin-added item."""

import logging
from pathlib import Path

import numpy as np
import pytest

from fedrec.server.text_store import EmbeddingStore
from fedrec.shared.models.encoder import TEXT_DIM


class FakeEncoder:
    """Deterministic vectors from the text's length; counts what it was asked to encode."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return np.array([np.full(TEXT_DIM, len(t), np.float32) for t in texts])


def test_a_reopened_store_encodes_nothing_it_already_holds(tmp_path: Path) -> None:
    path, enc = tmp_path / "emb.npz", FakeEncoder()
    first = EmbeddingStore(path, max_length=64).encode(["a", "bb", "a"], enc)
    assert enc.calls == [["a", "bb"]]
    again = EmbeddingStore(path, max_length=64).encode(["bb", "a", "ccc"], enc)
    assert enc.calls[1:] == [["ccc"]]
    np.testing.assert_array_equal(again[:2], first[[1, 0]])


def test_another_token_limit_is_another_key(tmp_path: Path) -> None:
    path, enc = tmp_path / "emb.npz", FakeEncoder()
    EmbeddingStore(path, max_length=64).encode(["a"], enc)
    EmbeddingStore(path, max_length=32).encode(["a"], enc)
    assert len(enc.calls) == 2


def test_retain_forgets_the_rest_on_disk(tmp_path: Path) -> None:
    path, enc = tmp_path / "emb.npz", FakeEncoder()
    store = EmbeddingStore(path, max_length=64)
    store.encode(["a", "b", "c"], enc)
    store.retain(["b"])
    assert len(EmbeddingStore(path, max_length=64)) == 1


def test_an_unreadable_store_is_ignored_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "emb.npz"
    path.write_bytes(b"not an npz")
    with caplog.at_level(logging.WARNING):
        store = EmbeddingStore(path, max_length=64)
    assert len(store) == 0 and str(path) in caplog.text
    assert store.encode(["a"], FakeEncoder()).shape == (1, TEXT_DIM)
