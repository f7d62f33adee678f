"""The served items as one value: vectors, biases, text embeddings and catalogue entries.

A change to the items (an admin adding, replacing or removing one) builds new tables and
swaps them in whole, so a reader that takes one snapshot sees a consistent catalogue
without holding a lock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from fedrec.server.serving.errors import UnknownItems
from fedrec.shared.data.dataset import ItemCatalog


@dataclass(frozen=True)
class ScoredItem:
    """One recommended item."""

    id: str
    index: int
    title: str
    genres: list[str]
    score: float
    because: str | None = None


def unit_rows(q: np.ndarray) -> np.ndarray:
    """The rows of ``q`` at unit length (a zero row stays zero)."""
    return q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)  # type: ignore[no-any-return]


# The trained items' cosines (Tables.gram) are kept up to this many items (a float32
# matrix of 256 MiB), and past GRAM_ANY_WIDTH_ITEMS only where they are no larger than
# the item vectors themselves (a co-occurrence model's are as wide as the catalogue).
GRAM_MAX_ITEMS = 8192
GRAM_ANY_WIDTH_ITEMS = 2048


@dataclass(frozen=True)
class Tables:
    """The served items, as one value: replaced whole by a change, never edited in place."""

    q: np.ndarray  # [n, d] item vectors
    b: np.ndarray  # [n] item biases
    unit: np.ndarray  # [n, d] the vectors at unit length (similar items)
    emb: np.ndarray  # [n, 384] text embeddings ([n, 0] without text towers)
    ids: tuple[str, ...]
    titles: tuple[str, ...]
    genres: tuple[tuple[str, ...], ...]
    texts: tuple[str, ...]
    index_of: dict[str, int]
    # [n] the model's item popularity (free-text queries, .intent); [0] when it has none
    prior: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    # [n0, n0] cosines among the trained items (``unit @ unit.T``), where asked for: a
    # liked item's similarities are then a row read, not a pass over every item's vector.
    # Trained items never change, so added items leave it valid (``.scoring``).
    gram: np.ndarray | None = None

    @classmethod
    def of(
        cls,
        q: np.ndarray,
        b: np.ndarray,
        emb: np.ndarray,
        catalog: ItemCatalog,
        prior: np.ndarray | None = None,
        *,
        gram: bool = False,
    ) -> Tables:
        """The tables of a trained catalogue and its served vectors, biases and embeddings.

        ``gram``: also the trained items' cosines (:attr:`gram`), unless the catalogue is
        larger than :data:`GRAM_MAX_ITEMS` or the matrix would outweigh the vectors.
        """
        ids = tuple(catalog.raw_ids)
        if prior is not None and prior.shape != (len(ids),):
            raise ValueError(f"item_prior has shape {prior.shape}, expected ({len(ids)},)")
        unit = unit_rows(q)
        n, d = unit.shape
        keep_gram = gram and n <= GRAM_MAX_ITEMS and n <= max(d, GRAM_ANY_WIDTH_ITEMS)
        return cls(
            q=q,
            b=b,
            unit=unit,
            emb=emb,
            ids=ids,
            titles=tuple(catalog.titles),
            genres=tuple(tuple(g) for g in catalog.genres),
            texts=tuple(catalog.texts),
            index_of={raw: i for i, raw in enumerate(ids)},
            prior=np.zeros(0, np.float32) if prior is None else prior.astype(np.float32),
            gram=(unit @ unit.T).astype(np.float32) if keep_gram else None,
        )

    # -- look-ups ----------------------------------------------------------------------

    def entry(self, index: int, score: float = 0.0, because: str | None = None) -> ScoredItem:
        """The catalogue entry of ``index`` as a :class:`ScoredItem`."""
        return ScoredItem(
            id=self.ids[index],
            index=int(index),
            title=self.titles[index],
            genres=list(self.genres[index]),
            score=float(score),
            because=because,
        )

    def indices(self, ids: Sequence[str]) -> np.ndarray:
        """Indices of raw ids; :class:`UnknownItems` lists every unknown one."""
        missing = [i for i in ids if i not in self.index_of]
        if missing:
            raise UnknownItems(missing)
        return np.array([self.index_of[i] for i in ids], dtype=np.int64)

    def genre_mask(self, genres: Sequence[str]) -> np.ndarray:
        """Which items have one of ``genres`` (any case)."""
        wanted = {g.lower() for g in genres}
        return np.array([bool(wanted & {x.lower() for x in gs}) for gs in self.genres], bool)

    # -- changes: each returns new tables --------------------------------------------

    def appended(
        self,
        q: np.ndarray,
        b: np.ndarray,
        emb: np.ndarray,
        *,
        ids: Sequence[str],
        titles: Sequence[str],
        genres: Sequence[Sequence[str]],
        texts: Sequence[str],
    ) -> Tables:
        """These tables with new items after the last (their ids must be new)."""
        start = len(self.ids)
        return Tables(
            q=np.vstack([self.q, q]),
            b=np.concatenate([self.b, b]),
            unit=np.vstack([self.unit, unit_rows(q)]),
            emb=np.vstack([self.emb, emb]),
            ids=self.ids + tuple(ids),
            titles=self.titles + tuple(titles),
            genres=self.genres + tuple(tuple(g) for g in genres),
            texts=self.texts + tuple(texts),
            index_of={**self.index_of, **{raw: start + j for j, raw in enumerate(ids)}},
            # a new item's popularity is unknown, not nil: the catalogue's median, so its own
            # text (not a penalty for being new) decides whether a query finds it
            prior=np.concatenate([self.prior, np.full(len(ids), _typical(self.prior))])
            if self.prior.size
            else self.prior,
            gram=self.gram,
        )

    def replaced(
        self,
        index: int,
        q: np.ndarray,
        b: float,
        emb: np.ndarray,
        *,
        title: str,
        genres: Sequence[str],
        text: str,
    ) -> Tables:
        """These tables with item ``index``'s vector, bias, embedding and entry replaced."""
        vectors, bias, embs, unit = self.q.copy(), self.b.copy(), self.emb.copy(), self.unit.copy()
        vectors[index], bias[index], embs[index] = q, b, emb
        unit[index] = unit_rows(q[None, :])[0]

        def put(table: tuple[Any, ...], value: Any) -> tuple[Any, ...]:
            return table[:index] + (value,) + table[index + 1 :]

        return replace(
            self,
            gram=self._gram_without(index),
            q=vectors,
            b=bias,
            emb=embs,
            unit=unit,
            titles=put(self.titles, title),
            genres=put(self.genres, tuple(genres)),
            texts=put(self.texts, text),
        )

    def without(self, index: int) -> Tables:
        """These tables without item ``index`` (the items after it move up one)."""

        def drop(table: tuple[Any, ...]) -> tuple[Any, ...]:
            return table[:index] + table[index + 1 :]

        ids = drop(self.ids)
        return Tables(
            q=np.delete(self.q, index, axis=0),
            b=np.delete(self.b, index),
            unit=np.delete(self.unit, index, axis=0),
            emb=np.delete(self.emb, index, axis=0),
            ids=ids,
            titles=drop(self.titles),
            genres=drop(self.genres),
            texts=drop(self.texts),
            index_of={raw: i for i, raw in enumerate(ids)},
            prior=np.delete(self.prior, index) if self.prior.size else self.prior,
            gram=self._gram_without(index),
        )

    def _gram_without(self, index: int) -> np.ndarray | None:
        """:attr:`gram` after item ``index`` changes: kept unless ``index`` is a trained item."""
        return self.gram if self.gram is not None and index >= len(self.gram) else None


def _typical(prior: np.ndarray) -> float:
    return float(np.median(prior)) if prior.size else 0.0
