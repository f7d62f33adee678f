"""The serving model: plain numpy over the global item factors (no user factors here).

The server never holds a user's private factor. A new user is represented by the items
they say they like: their vector is the mean of those items' factors, which is the
MF-only cold start. Similar items are nearest neighbours by cosine similarity.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fedrec.shared.checkpoint import Checkpoint
from fedrec.shared.data.dataset import ItemCatalog


class UnknownItems(KeyError):
    """Item ids that are not in the model's catalogue."""

    def __init__(self, ids: Sequence[str]) -> None:
        self.ids = list(ids)
        super().__init__(f"unknown item id(s): {', '.join(self.ids)}")

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class ScoredItem:
    """One recommended item."""

    id: str
    index: int
    title: str
    genres: list[str]
    score: float
    because: str | None = None


class Recommender:
    """Item factors ``Q [n, d]``, biases ``b [n]`` and the catalogue, ready to answer."""

    def __init__(
        self, item_factors: np.ndarray, item_bias: np.ndarray, catalog: ItemCatalog
    ) -> None:
        if item_factors.shape[0] != len(catalog) or item_bias.shape != (len(catalog),):
            raise ValueError("item factors, biases and catalogue disagree on the number of items")
        self.q = item_factors.astype(np.float32)
        self.b = item_bias.astype(np.float32)
        self.catalog = catalog
        self.index_of = {raw: i for i, raw in enumerate(catalog.raw_ids)}
        norms = np.linalg.norm(self.q, axis=1, keepdims=True)
        self._unit = self.q / np.maximum(norms, 1e-12)

    @classmethod
    def from_checkpoint(cls, ckpt: Checkpoint) -> Recommender:
        """Build from a loaded checkpoint."""
        return cls(ckpt.tensors["item_factors"], ckpt.tensors["item_bias"], ckpt.catalog)

    @property
    def n_items(self) -> int:
        """Number of items in the catalogue."""
        return len(self.catalog)

    def indices(self, ids: Sequence[str]) -> np.ndarray:
        """Catalogue indices of raw ids; :class:`UnknownItems` lists every unknown one."""
        missing = [i for i in ids if i not in self.index_of]
        if missing:
            raise UnknownItems(missing)
        return np.array([self.index_of[i] for i in ids], dtype=np.int64)

    def item(self, index: int, score: float = 0.0, because: str | None = None) -> ScoredItem:
        """The catalogue entry of ``index`` as a :class:`ScoredItem`."""
        return ScoredItem(
            id=self.catalog.raw_ids[index],
            index=int(index),
            title=self.catalog.titles[index],
            genres=list(self.catalog.genres[index]),
            score=float(score),
            because=because,
        )

    def _top(self, scores: np.ndarray, exclude: np.ndarray, k: int) -> np.ndarray:
        scores = scores.copy()
        scores[exclude] = -np.inf
        k = min(k, int(np.isfinite(scores).sum()))
        if k <= 0:
            return np.zeros(0, dtype=np.int64)
        top = np.argpartition(-scores, k - 1)[:k]
        return top[np.lexsort((top, -scores[top]))]

    def similar_items(self, item_id: str, k: int) -> list[ScoredItem]:
        """The ``k`` items whose factors are most cosine-similar to ``item_id``'s."""
        idx = int(self.indices([item_id])[0])
        sims = self._unit @ self._unit[idx]
        top = self._top(sims, np.array([idx]), k)
        return [self.item(i, sims[i]) for i in top]

    def cold_start(
        self, liked_item_ids: Sequence[str], k: int, exclude: Sequence[str] = ()
    ) -> list[ScoredItem]:
        """Top ``k`` for a new user who likes ``liked_item_ids`` (which are never returned).

        ``because`` names the liked item whose factor agrees most with each recommendation.
        """
        liked = self.indices(list(liked_item_ids))
        excluded = np.union1d(liked, self.indices(list(exclude)) if exclude else liked)
        user = self.q[liked].mean(axis=0)
        scores = self.q @ user + self.b
        top = self._top(scores, excluded, k)
        affinity = self.q[top] @ self.q[liked].T  # [k, n_liked]
        return [
            self.item(i, scores[i], because=self.catalog.raw_ids[liked[int(np.argmax(row))]])
            for i, row in zip(top, affinity, strict=True)
        ]
