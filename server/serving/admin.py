"""The admin's changes to the served items: add, replace or remove items known by their text.

New items are placed from their text alone (:mod:`.placement`). Writers hold one lock and
swap in whole new tables (:mod:`.tables`), so readers never wait for a change.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from fedrec.server.serving.catalogue import Catalogue
from fedrec.server.serving.placement import NewItem, place
from fedrec.server.serving.tables import ScoredItem, Tables
from fedrec.server.serving.towers import TextTowers
from fedrec.server.text_map import TextMap
from fedrec.server.text_store import EmbeddingStore


class EditableCatalogue(Catalogue):
    """The served items, with the admin's added items that can change (trained ones cannot)."""

    def __init__(
        self, tables: Tables, *, towers: TextTowers | None, text_map: TextMap | None
    ) -> None:
        super().__init__(tables)
        self.towers = towers
        # How new items are placed (.placement): this map, or the item head where it is None.
        self.text_map = text_map
        # Where new items' text embeddings are kept between restarts (none: encode each time).
        self.embedding_store: EmbeddingStore | None = None
        # Held by writers (new items) only: readers take a snapshot of the tables instead.
        self._lock = threading.Lock()

    def add_items(self, items: Sequence[NewItem]) -> list[ScoredItem]:
        """Add items known only by their text; they are recommendable at once.

        Their vectors come from their text alone (:mod:`.placement`). All texts go through
        the encoder in one batch, and the tables grow once, however many items there are.
        """
        if not items:
            return []
        with self._lock:
            t = self._t
            ids = [it.id for it in items]
            taken = [i for i in ids if i in t.index_of]
            if taken or len(set(ids)) < len(ids):
                raise ValueError(f"item id(s) already in the catalogue: {', '.join(taken or ids)}")
            new = place(items, self.towers, self.text_map, self.embedding_store)
            self._swap(
                t.appended(
                    new.q,
                    new.b,
                    new.emb,
                    ids=ids,
                    titles=[it.title for it in items],
                    genres=[it.genres for it in items],
                    texts=new.texts,
                )
            )
            start = len(t.ids)
            return [self._t.entry(start + j, float(new.b[j])) for j in range(len(items))]

    def add_item(
        self, item_id: str, title: str, genres: Sequence[str] = (), description: str = ""
    ) -> ScoredItem:
        """Add one item known only by its text (:meth:`add_items`)."""
        return self.add_items([NewItem(item_id, title, tuple(genres), description)])[0]

    def update_item(self, item: NewItem) -> ScoredItem:
        """Replace an added item's text (and so its vector); trained items are refused."""
        with self._lock:
            t = self._t
            idx = self._added_index(t, item.id)
            new = place([item], self.towers, self.text_map, self.embedding_store)
            self._swap(
                t.replaced(
                    idx,
                    new.q[0],
                    float(new.b[0]),
                    new.emb[0],
                    title=item.title,
                    genres=item.genres,
                    text=new.texts[0],
                )
            )
            return self._t.entry(idx, float(new.b[0]))

    def remove_item(self, item_id: str) -> None:
        """Remove an added item; trained items are refused."""
        with self._lock:
            t = self._t
            self._swap(t.without(self._added_index(t, item_id)))
