"""Any ratings CSV (plus an optional items CSV) as a :class:`Dataset`.

The ratings file needs a header with a user and an item column (names configurable);
rating and timestamp columns are optional (every row then counts as rating 1.0 at time
0). Ids may be any text. The items file, when given, has an id column (named like the
ratings' item column unless told otherwise), a title column, an optional ``|``-separated
genres column and any extra text columns, all joined into the item's text.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fedrec.shared.data.build import RatingRows, assemble_dataset
from fedrec.shared.data.catalog import ItemRows, split_genres
from fedrec.shared.data.dataset import Dataset
from fedrec.shared.data.textio import Field, Table, read_table
from fedrec.shared.errors import DataError

logger = logging.getLogger(__name__)


def _ids(table: Table, column: str) -> np.ndarray:
    """Return a text id column as a numpy array; an empty id is a :class:`DataError`."""
    values = np.asarray(table.strings(column), dtype=np.str_)
    empty = np.flatnonzero(values == "")
    if empty.size:
        raise DataError(
            f"empty id ({empty.size} such row(s)); every row needs a {column}",
            path=table.path,
            line=int(table.lines[empty[0]]),
            column=column,
        )
    return values


def _extras(table: Table, columns: Sequence[str]) -> list[str]:
    """Join the extra text columns into sentences like ``"Description: A heist."``."""
    per_column = [(c.replace("_", " ").strip().capitalize(), table.strings(c)) for c in columns]
    out = []
    for row in range(len(table)):
        parts = [f"{label}: {values[row]}" for label, values in per_column if values[row]]
        out.append(" ".join(p if p.endswith((".", "!", "?")) else f"{p}." for p in parts))
    return out


def read_generic_items(
    path: str | Path,
    *,
    id_col: str = "item",
    title_col: str = "title",
    genres_col: str = "genres",
    text_cols: Sequence[str] = (),
) -> ItemRows:
    """Read an items CSV; ``genres_col`` is used when the file has it."""
    fields = [Field(id_col), Field(title_col), Field(genres_col, required=False)]
    fields += [Field(c) for c in text_cols if c not in (id_col, title_col, genres_col)]
    table = read_table(path, fields)
    raw_ids = _ids(table, id_col)
    titles = [
        t or str(raw) for t, raw in zip(table.strings(title_col), raw_ids.tolist(), strict=True)
    ]
    genres = (
        [split_genres(g) for g in table.strings(genres_col)]
        if table.has(genres_col)
        else [[] for _ in range(len(table))]
    )
    extra_cols = [c for c in text_cols if c not in (id_col, title_col, genres_col)]
    return ItemRows(
        path=table.path,
        raw_ids=raw_ids,
        lines=table.lines,
        titles=titles,
        genres=genres,
        extras=_extras(table, extra_cols) if extra_cols else None,
    )


def load_generic(
    ratings_path: str | Path,
    *,
    items_path: str | Path | None = None,
    user_col: str = "user",
    item_col: str = "item",
    rating_col: str = "rating",
    timestamp_col: str = "timestamp",
    items_id_col: str | None = None,
    title_col: str = "title",
    genres_col: str = "genres",
    text_cols: Sequence[str] = (),
    name: str = "generic",
) -> Dataset:
    """Load a ratings CSV with a header (and optionally an items CSV) as a :class:`Dataset`.

    Ratings must be numbers and timestamps integers ``>= 0`` where those columns exist.
    Every rated item must appear in the items file when one is given; items there that
    nobody rated stay in the catalogue. Ids sort numerically when all are integers.
    """
    fields = [
        Field(user_col),
        Field(item_col),
        Field(rating_col, "float", required=False),
        Field(timestamp_col, "int", required=False),
    ]
    table = read_table(ratings_path, fields)
    n = len(table)
    if not table.has(rating_col):
        logger.info("%s has no %r column: every row counts as rating 1.0", table.path, rating_col)
    ratings = RatingRows(
        path=table.path,
        users=_ids(table, user_col),
        items=_ids(table, item_col),
        ratings=table.array(rating_col) if table.has(rating_col) else np.ones(n),
        timestamps=(
            table.array(timestamp_col) if table.has(timestamp_col) else np.zeros(n, np.int64)
        ),
        lines=table.lines,
        columns=(user_col, item_col, rating_col, timestamp_col),
    )
    items = None
    if items_path is not None:
        items = read_generic_items(
            items_path,
            id_col=items_id_col or item_col,
            title_col=title_col,
            genres_col=genres_col,
            text_cols=text_cols,
        )
    return assemble_dataset(name, ratings, items=items)
