"""Text intents with relevance rules on catalogue metadata, and how well a list answers them.

An intent is a query a person might type ("a feel-good musical") and a rule saying which
items answer it, from metadata alone: genres, the year in the title, words of the title
(``intents.toml`` beside this module; its header says how rules are written). A model's
answer is its top 10 for the query; :func:`intent_metrics` scores a set of answers by
relevance precision@10, how popular the answers are and how diverse (genres, and the
largest group of one franchise in a list).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fedrec.shared.data.catalog import parse_year
from fedrec.shared.data.dataset import ItemCatalog
from fedrec.shared.evaluation.metrics import (
    franchise,
    genre_matrix,
    intra_list_diversity,
    largest_franchise,
    mean_popularity_rank,
    popularity_rank,
)

INTENTS_FILE = Path(__file__).with_name("intents.toml")
NEW_ITEMS_FILE = Path(__file__).with_name("new-items.toml")
_FIELDS = {"query", "kind", "any", "all", "none", "year_min", "year_max", "title"}


@dataclass(frozen=True)
class Intent:
    """One query and the rule its relevant items satisfy (every given field must hold)."""

    query: str
    kind: str = ""
    any: tuple[str, ...] = ()
    all: tuple[str, ...] = ()
    none: tuple[str, ...] = ()
    year_min: int | None = None
    year_max: int | None = None
    title: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.query.strip():
            raise ValueError("an intent needs a query")
        if not (self.any or self.all or self.title or self.year_min or self.year_max):
            raise ValueError(f"intent {self.query!r} has no rule: every item would be relevant")
        if self.year_min and self.year_max and self.year_min > self.year_max:
            raise ValueError(f"intent {self.query!r}: year_min > year_max")

    def matches(self, title: str, genres: Sequence[str], year: int | None = None) -> bool:
        """Whether an item with ``title``, ``genres`` and ``year`` answers this intent.

        Without ``year``, the year that ends a MovieLens title counts.
        """
        have = set(genres)
        if self.any and not have & set(self.any):
            return False
        if self.all and not set(self.all) <= have:
            return False
        if have & set(self.none):
            return False
        if self.year_min is not None or self.year_max is not None:
            year = year if year is not None else parse_year(title)
            if year is None:
                return False
            if self.year_min is not None and year < self.year_min:
                return False
            if self.year_max is not None and year > self.year_max:
                return False
        if self.title:
            words = [re.escape(w) for w in self.title]
            if not re.search(rf"(?<!\w)({'|'.join(words)})(?!\w)", title, re.IGNORECASE):
                return False
        return True

    def relevant(self, catalog: ItemCatalog) -> np.ndarray:
        """The boolean mask of the catalogue's items that answer this intent."""
        years = catalog.years or [None] * len(catalog.titles)
        rows = zip(catalog.titles, catalog.genres, years, strict=True)
        return np.array([self.matches(t, g, y) for t, g, y in rows], dtype=bool)


def load_intents(path: Path = INTENTS_FILE) -> list[Intent]:
    """The intents of a TOML file of ``[[intent]]`` tables, checked."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise ValueError(f"cannot read intents from {path}: {err}") from err
    intents = []
    for number, row in enumerate(data.get("intent", []), 1):
        unknown = set(row) - _FIELDS
        if unknown:
            raise ValueError(f"{path}, intent {number}: unknown fields {sorted(unknown)}")
        lists = {k: tuple(row[k]) for k in ("any", "all", "none", "title") if k in row}
        try:
            intents.append(
                Intent(
                    **{k: v for k, v in row.items() if k not in lists},
                    **lists,  # type: ignore[arg-type]
                )
            )
        except (TypeError, ValueError) as err:
            raise ValueError(f"{path}, intent {number}: {err}") from err
    queries = [i.query for i in intents]
    if len(set(queries)) != len(queries):
        raise ValueError(f"{path}: a query appears twice")
    return intents


@dataclass(frozen=True)
class NewItemQuery:
    """An item no catalogue holds, and a query that paraphrases its description."""

    id: str
    title: str
    genres: tuple[str, ...]
    description: str
    query: str


def load_new_items(path: Path = NEW_ITEMS_FILE) -> list[NewItemQuery]:
    """The ``[[item]]`` tables of a TOML file (``new-items.toml`` by default), checked."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise ValueError(f"cannot read new items from {path}: {err}") from err
    out = []
    for number, row in enumerate(data.get("item", []), 1):
        try:
            out.append(
                NewItemQuery(
                    id=str(row["id"]),
                    title=str(row["title"]),
                    genres=tuple(row.get("genres", ())),
                    description=str(row["description"]),
                    query=str(row["query"]),
                )
            )
        except KeyError as err:
            raise ValueError(f"{path}, item {number}: missing {err}") from err
    if len({it.id for it in out}) != len(out):
        raise ValueError(f"{path}: an id appears twice")
    return out


def intent_metrics(
    intents: Sequence[Intent],
    answer: Callable[[Intent], np.ndarray],
    catalog: ItemCatalog,
    item_counts: np.ndarray,
    *,
    k: int = 10,
) -> dict[str, object]:
    """Relevance precision@k, mean popularity rank and genre diversity of each answer.

    Precision is the relevant items in the top ``k`` over ``min(k, relevant items)``, so an
    intent with few relevant items in the catalogue can still be answered perfectly.
    ``answer(intent)`` returns the top-``k`` item indices (best first); an intent no item
    of the catalogue answers is left out (and counted in ``unanswerable``).
    """
    features = genre_matrix(catalog.genres)
    ranks = popularity_rank(item_counts)
    keys = [franchise(t) for t in catalog.titles]
    rows = []
    for intent in intents:
        mask = intent.relevant(catalog)
        if not mask.any():
            continue
        top = np.asarray(answer(intent), dtype=np.int64)[:k]
        rows.append(
            {
                "query": intent.query,
                "kind": intent.kind,
                # hits over what a perfect list could hold: an intent with 4 relevant items
                # is answered perfectly by 4 of them in the top 10
                "precision": float(mask[top].sum() / min(k, mask.sum())) if top.size else 0.0,
                "relevant_items": int(mask.sum()),
                "mean_pop_rank": float(mean_popularity_rank(top[None, :], ranks)[0]),
                "ild_genres": float(intra_list_diversity(top[None, :], features)[0]),
                "largest_franchise": int(largest_franchise(top[None, :], keys)[0]),
                "top": top.tolist(),
            }
        )
    if not rows:
        raise ValueError("no intent has a relevant item in this catalogue")

    def mean(key: str) -> float:
        return float(np.mean([r[key] for r in rows]))

    return {
        f"precision@{k}": mean("precision"),
        f"mean_pop_rank@{k}": mean("mean_pop_rank"),
        f"ild_genres@{k}": mean("ild_genres"),
        f"largest_franchise@{k}": max(r["largest_franchise"] for r in rows),
        "intents": len(rows),
        "unanswerable": len(intents) - len(rows),
        "rows": rows,
    }
