"""Where a new item, known only by its text, goes in the factor space.

Its vector comes from its text alone (no trained factor yet): the ridge map fitted on the
served item table (:mod:`fedrec.server.text_map`) where the catalogue is big enough to fit
one (it placed held-out items better than the item head), else the item head's text part.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fedrec.server.serving.errors import NoTextTower
from fedrec.server.serving.towers import TextTowers
from fedrec.server.text_map import TextMap, fit_text_map, min_items
from fedrec.server.text_store import EmbeddingStore
from fedrec.shared.data.catalog import item_text


@dataclass(frozen=True)
class NewItem:
    """An item to add, known only by its text."""

    id: str
    title: str
    genres: tuple[str, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class Placed:
    """New items' texts ``[m]``, embeddings ``[m, 384]``, vectors ``[m, d]`` and biases ``[m]``."""

    texts: list[str]
    emb: np.ndarray
    q: np.ndarray
    b: np.ndarray


def text_map_for(
    towers: TextTowers | None, emb: np.ndarray, q: np.ndarray, b: np.ndarray
) -> TextMap | None:
    """The map fitted on the trained table, where there are text towers and items enough."""
    if towers is None or len(emb) < min_items(emb.shape[1]):
        return None
    return fit_text_map(emb, q, b)


def place(
    items: Sequence[NewItem],
    towers: TextTowers | None,
    text_map: TextMap | None,
    store: EmbeddingStore | None = None,
) -> Placed:
    """The new items placed from their texts, encoded in one batch (``store`` keeps them)."""
    if towers is None:
        raise NoTextTower(
            "this model was trained without text towers (text-tower = off): new items "
            "cannot be placed from text"
        )
    texts = [item_text(it.title, list(it.genres), extra=it.description) for it in items]
    if store is not None:
        emb = store.encode(texts, towers.encode_items)
    else:
        emb = towers.encode_items(texts)
    placer = text_map.place if text_map is not None else towers.item_part
    q, b = placer(emb)
    return Placed(texts, emb, q.astype(np.float32), b.astype(np.float32))
