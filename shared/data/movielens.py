"""MovieLens loaders: the embedded ML-100K and GroupLens' ml-100k, ml-1m, ml-latest.

All produce a :class:`Dataset` under the same rules (see :mod:`.build`).

Formats (GroupLens README files): ml-100k ``u.data`` (tab-separated user, item, rating,
timestamp), ``u.item`` (``|``-separated, latin-1, 19 genre flags), ``u.user``; ml-1m
``ratings.dat``, ``movies.dat`` and ``users.dat`` (``::``-separated, latin-1); ml-latest
``ratings.csv``, ``movies.csv`` and an optional ``tags.csv`` (UTF-8 CSV with a header).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fedrec.shared.data.build import RatingRows, UserRows, assemble_dataset
from fedrec.shared.data.catalog import ItemRows, parse_release_year, split_genres, top_tags
from fedrec.shared.data.dataset import Dataset
from fedrec.shared.data.sources import ensure_ml100k
from fedrec.shared.data.textio import Field, Table, read_table
from fedrec.shared.data.validate import require_folder
from fedrec.shared.errors import DataError

logger = logging.getLogger(__name__)

# fmt: off
ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)
#: ML-1M ``users.dat`` occupation codes 0..20 (from the ml-1m README).
ML1M_OCCUPATIONS = (
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student",
    "customer service", "doctor/health care", "executive/managerial", "farmer", "homemaker",
    "K-12 student", "lawyer", "programmer", "retired", "sales/marketing", "scientist",
    "self-employed", "technician/engineer", "tradesman/craftsman", "unemployed", "writer",
)

_ML100K_ITEM_NAMES = (
    "movie_id", "title", "release_date", "video_release_date", "imdb_url", *ML100K_GENRES
)
# fmt: on
_RATING_NAMES = ("user_id", "item_id", "rating", "timestamp")


def _flag_genres(flags: Sequence[np.ndarray], n: int) -> list[list[str]]:
    """Turn 0/1 flag columns into genre names in ML100K_GENRES order ("unknown" means none)."""
    matrix = np.stack([np.asarray(f) for f in flags], axis=1) if n else np.zeros((0, 19))
    return [[ML100K_GENRES[j] for j in np.flatnonzero(row) if j > 0] for row in matrix != 0]


def _ratings_rows(table: Table, names: Sequence[str]) -> RatingRows:
    user, item, rating, time = names
    return RatingRows(
        path=table.path,
        users=table.array(user),
        items=table.array(item),
        ratings=table.array(rating),
        timestamps=table.array(time),
        lines=table.lines,
        columns=(user, item, rating, time),
    )


def _read_ratings(path: Path, *, sep: str, header: bool, names: Sequence[str]) -> RatingRows:
    fields = [Field(names[0], "int"), Field(names[1], "int")]
    fields += [Field(names[2], "float"), Field(names[3], "int")]
    table = read_table(
        path,
        fields,
        sep=sep,
        header=header,
        names=None if header else names,
        encoding="utf-8" if header else "latin-1",
        quoted=header,
    )
    return _ratings_rows(table, names)


# ------------------------------------------------------------------ embedded parquet


def _read_parquet(path: Path, columns: Sequence[str]) -> dict[str, np.ndarray | list[str]]:
    """Read columns of a parquet file; a missing column or value is a :class:`DataError`."""
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"cannot read parquet: {exc}", path=str(path)) from None
    out: dict[str, np.ndarray | list[str]] = {}
    for name in columns:
        if name not in table.column_names:
            raise DataError(
                f"missing column; found columns: {', '.join(table.column_names)}",
                path=str(path),
                column=name,
            )
        column = table.column(name)
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            out[name] = ["" if v is None else str(v) for v in column.to_pylist()]
            continue
        if column.null_count:
            row = int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])
            raise DataError("missing value", path=str(path), line=row + 1, column=name)
        out[name] = column.to_numpy()
    return out


def _array(columns: dict[str, np.ndarray | list[str]], name: str) -> np.ndarray:
    values = columns[name]
    return values if isinstance(values, np.ndarray) else np.asarray(values)


def _strings(columns: dict[str, np.ndarray | list[str]], name: str) -> list[str]:
    values = columns[name]
    return values if isinstance(values, list) else [str(v) for v in values.tolist()]


def load_ml100k_embedded(cache_dir: str | Path | None = None) -> Dataset:
    """Load the embedded MovieLens-100K (fetched once by :func:`~.sources.ensure_ml100k`)."""
    files = ensure_ml100k(cache_dir)
    names = ("user_id", "movie_id", "rating", "timestamp")
    r = _read_parquet(files.ratings, names)
    rows = np.arange(1, len(r["user_id"]) + 1, dtype=np.int64)
    ratings = RatingRows(
        path=str(files.ratings),
        users=_array(r, "user_id").astype(np.int64),
        items=_array(r, "movie_id").astype(np.int64),
        ratings=_array(r, "rating").astype(np.float64),
        timestamps=_array(r, "timestamp").astype(np.int64),
        lines=rows,
        columns=names,
    )
    i = _read_parquet(files.items, ("movie_id", "movie_title", "release_date", *ML100K_GENRES))
    n_items = len(i["movie_id"])
    items = ItemRows(
        path=str(files.items),
        raw_ids=_array(i, "movie_id").astype(np.int64),
        lines=np.arange(1, n_items + 1, dtype=np.int64),
        titles=_strings(i, "movie_title"),
        genres=_flag_genres([_array(i, g) for g in ML100K_GENRES], n_items),
        years=[parse_release_year(d) for d in _strings(i, "release_date")],
    )
    u = _read_parquet(files.users, ("user_id", "age", "gender", "occupation"))
    users = UserRows(
        path=str(files.users),
        raw_ids=_array(u, "user_id").astype(np.int64),
        lines=np.arange(1, len(u["user_id"]) + 1, dtype=np.int64),
        ages=[int(a) for a in _array(u, "age").tolist()],
        genders=[g or None for g in _strings(u, "gender")],
        occupations=[o or None for o in _strings(u, "occupation")],
    )
    return assemble_dataset("ml-100k", ratings, items=items, users=users)


# ------------------------------------------------------------------ GroupLens folders


def load_ml100k(folder: str | Path) -> Dataset:
    """Load a GroupLens ``ml-100k`` folder: ``u.data``, ``u.item``, optional ``u.user``."""
    files = require_folder(
        folder, required=("u.data", "u.item"), optional=("u.user",), fmt="ml-100k"
    )
    ratings = _read_ratings(files["u.data"], sep="\t", header=False, names=_RATING_NAMES)
    fields = [Field("movie_id", "int"), Field("title"), Field("release_date")]
    fields += [Field(g, "int") for g in ML100K_GENRES]
    t = read_table(
        files["u.item"],
        fields,
        sep="|",
        header=False,
        names=_ML100K_ITEM_NAMES,
        encoding="latin-1",
        quoted=False,
    )
    items = ItemRows(
        path=t.path,
        raw_ids=t.array("movie_id"),
        lines=t.lines,
        titles=t.strings("title"),
        genres=_flag_genres([t.array(g) for g in ML100K_GENRES], len(t)),
        years=[parse_release_year(d) for d in t.strings("release_date")],
    )
    users = None
    if "u.user" in files:
        names = ("user_id", "age", "gender", "occupation", "zip_code")
        fields = [
            Field("user_id", "int"),
            Field("age", "int"),
            Field("gender"),
            Field("occupation"),
        ]
        u = read_table(
            files["u.user"],
            fields,
            sep="|",
            header=False,
            names=names,
            encoding="latin-1",
            quoted=False,
        )
        users = UserRows(
            path=u.path,
            raw_ids=u.array("user_id"),
            lines=u.lines,
            ages=[int(a) for a in u.array("age").tolist()],
            genders=[g or None for g in u.strings("gender")],
            occupations=[o or None for o in u.strings("occupation")],
        )
    return assemble_dataset("ml-100k", ratings, items=items, users=users)


def load_ml1m(folder: str | Path) -> Dataset:
    """Load an ``ml-1m`` folder: ``ratings.dat``, ``movies.dat``, optional ``users.dat``."""
    files = require_folder(
        folder, required=("ratings.dat", "movies.dat"), optional=("users.dat",), fmt="ml-1m"
    )
    ratings = _read_ratings(files["ratings.dat"], sep="::", header=False, names=_RATING_NAMES)
    m = read_table(
        files["movies.dat"],
        [Field("movie_id", "int"), Field("title"), Field("genres")],
        sep="::",
        header=False,
        names=("movie_id", "title", "genres"),
        encoding="latin-1",
    )
    items = ItemRows(
        path=m.path,
        raw_ids=m.array("movie_id"),
        lines=m.lines,
        titles=m.strings("title"),
        genres=[split_genres(g) for g in m.strings("genres")],
    )
    users = None
    if "users.dat" in files:
        names = ("user_id", "gender", "age", "occupation", "zip_code")
        u = read_table(
            files["users.dat"],
            [
                Field("user_id", "int"),
                Field("gender"),
                Field("age", "int"),
                Field("occupation", "int"),
            ],
            sep="::",
            header=False,
            names=names,
            encoding="latin-1",
        )
        codes = u.array("occupation")
        bad = np.flatnonzero((codes < 0) | (codes >= len(ML1M_OCCUPATIONS)))
        if bad.size:
            raise DataError(
                f"unknown occupation code {codes[bad[0]]}; ml-1m codes are 0..20",
                path=u.path,
                line=int(u.lines[bad[0]]),
                column="occupation",
            )
        users = UserRows(
            path=u.path,
            raw_ids=u.array("user_id"),
            lines=u.lines,
            ages=[int(a) for a in u.array("age").tolist()],
            genders=[g or None for g in u.strings("gender")],
            occupations=[ML1M_OCCUPATIONS[c] for c in codes.tolist()],
        )
    return assemble_dataset("ml-1m", ratings, items=items, users=users)


def load_ml_latest(folder: str | Path) -> Dataset:
    """Load a GroupLens ``ml-latest`` or ``ml-latest-small`` folder (CSVs with headers).

    Tags from the optional ``tags.csv`` join the item text, most frequent first (at most
    10 per item); tags of movies missing from ``movies.csv`` are ignored with a warning.
    """
    files = require_folder(
        folder, required=("ratings.csv", "movies.csv"), optional=("tags.csv",), fmt="ml-latest"
    )
    names = ("userId", "movieId", "rating", "timestamp")
    ratings = _read_ratings(files["ratings.csv"], sep=",", header=True, names=names)
    m = read_table(files["movies.csv"], [Field("movieId", "int"), Field("title"), Field("genres")])
    items = ItemRows(
        path=m.path,
        raw_ids=m.array("movieId"),
        lines=m.lines,
        titles=m.strings("title"),
        genres=[split_genres(g) for g in m.strings("genres")],
    )
    tags = None
    if "tags.csv" in files:
        t = read_table(files["tags.csv"], [Field("movieId", "int"), Field("tag")])
        movie_ids = [str(v) for v in t.array("movieId").tolist()]
        tags = top_tags(movie_ids, t.strings("tag"))
        known = {str(v) for v in m.array("movieId").tolist()}
        unknown = [k for k in tags if k not in known]
        if unknown:
            logger.warning(
                "%s: ignoring tags of %d movie(s) missing from %s", t.path, len(unknown), m.path
            )
    return assemble_dataset("ml-latest", ratings, items=items, tags=tags)
