"""The served catalogue now, and the look-ups over it: by id, title, genre and similarity.

Every reader takes the current :class:`Tables` once: an admin change swaps in whole new
tables, so a request sees one consistent catalogue without holding a lock.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fedrec.server.serving import scoring
from fedrec.server.serving.errors import TrainedItem
from fedrec.server.serving.tables import ScoredItem, Tables


class Catalogue:
    """The served items (a :class:`Tables` snapshot, swapped whole by a change)."""

    def __init__(self, tables: Tables) -> None:
        self._t = tables
        self._n_trained = len(tables.ids)
        self._catalog_genres = sorted({g for gs in tables.genres for g in gs})
        # Bumped by every change to the served items, so derived artifacts know they are stale.
        self.revision = 0

    def _swap(self, tables: Tables) -> None:
        """Serve ``tables`` from now on (the caller holds the writers' lock)."""
        self._t = tables
        self.revision += 1

    @property
    def tables(self) -> Tables:
        """The item tables now (a snapshot: later changes swap in new ones)."""
        return self._t

    @property
    def q(self) -> np.ndarray:
        """Item vectors ``[n, d]``."""
        return self._t.q

    @property
    def b(self) -> np.ndarray:
        """Item biases ``[n]``."""
        return self._t.b

    @property
    def emb(self) -> np.ndarray:
        """Item text embeddings ``[n, 384]`` (``[n, 0]`` without text towers)."""
        return self._t.emb

    @property
    def ids(self) -> tuple[str, ...]:
        """Item ids, in catalogue order."""
        return self._t.ids

    @property
    def titles(self) -> tuple[str, ...]:
        """Item titles."""
        return self._t.titles

    @property
    def genres(self) -> tuple[tuple[str, ...], ...]:
        """Item genres."""
        return self._t.genres

    @property
    def texts(self) -> tuple[str, ...]:
        """Item texts (what the encoder read)."""
        return self._t.texts

    @property
    def index_of(self) -> dict[str, int]:
        """Item id to index (do not modify)."""
        return self._t.index_of

    @property
    def n_items(self) -> int:
        """Number of items in the catalogue (added items included)."""
        return len(self._t.ids)

    @property
    def n_trained(self) -> int:
        """How many items came with the model (the rest were added from their text)."""
        return self._n_trained

    @property
    def known_genres(self) -> list[str]:
        """Every genre of the trained catalogue, sorted."""
        return list(self._catalog_genres)

    def genre_mask(self, genres: Sequence[str], t: Tables | None = None) -> np.ndarray:
        """Which items have one of ``genres`` (any case)."""
        return (t or self._t).genre_mask(genres)

    def search(self, query: str = "", *, genres: Sequence[str] = ()) -> list[ScoredItem]:
        """Items whose title holds ``query`` (any case), of ``genres`` if given, in order."""
        t = self._t
        needle = query.casefold()
        mask = t.genre_mask(genres) if genres else None
        return [
            t.entry(i)
            for i, title in enumerate(t.titles)
            if (not needle or needle in title.casefold()) and (mask is None or mask[i])
        ]

    def indices(self, ids: Sequence[str], t: Tables | None = None) -> np.ndarray:
        """Catalogue indices of raw ids; :class:`UnknownItems` lists every unknown one."""
        return (t or self._t).indices(ids)

    def item(self, index: int, score: float = 0.0, because: str | None = None) -> ScoredItem:
        """The catalogue entry of ``index`` as a :class:`ScoredItem`."""
        return self._t.entry(index, score, because)

    def lookup(self, item_id: str) -> ScoredItem:
        """The catalogue entry of ``item_id``; :class:`UnknownItems` if there is none."""
        t = self._t
        return t.entry(int(t.indices([item_id])[0]))

    def similar_items(
        self,
        item_id: str,
        k: int,
        *,
        offset: int = 0,
        exclude: Sequence[str] = (),
        genres: Sequence[str] = (),
    ) -> list[ScoredItem]:
        """Items ``offset`` to ``offset + k`` by cosine similarity to ``item_id``'s vector.

        The item itself and ``exclude`` are never returned; with ``genres`` only items having
        one of them are.
        """
        t = self._t
        idx = int(t.indices([item_id])[0])
        excluded = np.union1d([idx], t.indices(list(exclude)) if exclude else [idx])
        sims = t.unit @ t.unit[idx]
        if genres:
            excluded = np.union1d(excluded, np.flatnonzero(~t.genre_mask(genres)))
        top = scoring.top(sims, excluded.astype(np.int64), offset + k)[offset:]
        return [t.entry(i, sims[i]) for i in top]

    def _added_index(self, t: Tables, item_id: str) -> int:
        """The index of ``item_id`` in ``t``; :class:`TrainedItem` if it came with the model."""
        idx = int(t.indices([item_id])[0])
        if idx < self._n_trained:
            raise TrainedItem(
                f"item {item_id!r} comes with the trained model; only added items can change"
            )
        return idx
