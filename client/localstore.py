"""A node's own data: its users' interactions and the catalogue, in its data folder.

An edge node (``data-dir`` in its node config) holds only its own users' data, never a
partition of a shared data set::

    <data-dir>/interactions.sqlite   one row per (user, item): rating, timestamp, kind, holdout
    <data-dir>/catalog.json          the catalogue (fedrec-catalog/1), imported by the operator

Rows are keyed by (user, item): recording an item again updates its row, in a transaction,
never adds a second one. A weaker kind never replaces a stronger one (``rating`` > ``like`` >
``view``: viewing an item you rated keeps the rating). Items must be in the catalogue.

Users get a local index in the order they first appear, and keep it: a user added later
takes the next index, so the private factors trained so far stay with their users.

The hold-out rule. Everything recorded on the device (``fedrec node record``) trains, the
newest interactions included: feedback is what the next local update learns from. Evaluation
holds out only what the operator marked for it, explicitly: ``fedrec node import
--hold-out-newest`` marks each user's newest *imported* row (users with at least
:data:`MIN_FOR_HOLDOUT` rows). Recording anything on a held-out item clears its mark: from
then on it is feedback, and trains.
"""

from __future__ import annotations

import csv
import logging
import math
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fedrec.client.sealing import private_dir
from fedrec.shared.data.catalog_file import catalog_json, catalog_version, read_catalog
from fedrec.shared.data.dataset import ItemCatalog
from fedrec.shared.errors import DataError

logger = logging.getLogger(__name__)

DB_FILE = "interactions.sqlite"
CATALOG_FILE = "catalog.json"
KINDS = ("view", "like", "rating")  # weakest first
MIN_FOR_HOLDOUT = 3  # a user keeps at least two training rows when one is held out
_SCHEMA = 1
_STRENGTH = "CASE {0} WHEN 'rating' THEN 2 WHEN 'like' THEN 1 ELSE 0 END"
_CREATE = f"""
CREATE TABLE IF NOT EXISTS users (
    idx INTEGER PRIMARY KEY,
    user TEXT NOT NULL UNIQUE CHECK (user <> '')
);
CREATE TABLE IF NOT EXISTS interactions (
    user TEXT NOT NULL REFERENCES users (user),
    item TEXT NOT NULL CHECK (item <> ''),
    rating REAL,
    timestamp INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN {KINDS}),
    holdout INTEGER NOT NULL DEFAULT 0 CHECK (holdout IN (0, 1)),
    PRIMARY KEY (user, item),
    CHECK ((kind = 'rating') = (rating IS NOT NULL))
) WITHOUT ROWID;
"""
_UPSERT = f"""
INSERT INTO interactions (user, item, rating, timestamp, kind, holdout)
VALUES (:user, :item, :rating, :timestamp, :kind, 0)
ON CONFLICT (user, item) DO UPDATE SET
    rating = excluded.rating, timestamp = excluded.timestamp, kind = excluded.kind
WHERE {_STRENGTH.format("excluded.kind")} >= {_STRENGTH.format("interactions.kind")}
"""


@dataclass(frozen=True)
class Interaction:
    """One row to record: ``rating`` for kind ``rating`` only."""

    user: str
    item: str
    kind: str
    rating: float | None = None
    timestamp: int | None = None  # seconds; None: now

    def checked(self, *, where: str | None, line: int | None = None) -> dict[str, object]:
        """The row as SQL parameters, or a :class:`DataError` saying what is wrong."""
        if not self.user or not self.item:
            raise DataError("a user and an item id are needed", path=where, line=line)
        if self.kind not in KINDS:
            raise DataError(
                f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}", path=where, line=line
            )
        if (self.kind == "rating") != (self.rating is not None):
            raise DataError(
                "a rating needs a value, a like or a view has none", path=where, line=line
            )
        if self.rating is not None and not math.isfinite(self.rating):
            raise DataError(
                f"rating must be a finite number, got {self.rating}", path=where, line=line
            )
        stamp = int(time.time()) if self.timestamp is None else int(self.timestamp)
        if stamp < 0:
            raise DataError(f"timestamp must be >= 0, got {stamp}", path=where, line=line)
        return {
            "user": self.user,
            "item": self.item,
            "rating": self.rating,
            "timestamp": stamp,
            "kind": self.kind,
        }


@dataclass(frozen=True)
class UserRows:
    """Everything the store holds, per local user (index order), as catalogue indices."""

    user_ids: list[str]
    items: list[np.ndarray]  # int64 catalogue indices, newest first
    positive: list[np.ndarray]  # bool: counts as a positive (implicit threshold applied)
    holdout: list[np.ndarray]  # bool: held out for evaluation


class NodeStore:
    """The interactions and catalogue of one node, under ``data_dir``."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir).expanduser()

    # ------------------------------------------------------------------ catalogue

    @property
    def catalog_path(self) -> Path:
        """Where the imported catalogue lives."""
        return self.data_dir / CATALOG_FILE

    def import_catalog(self, path: Path) -> str:
        """Copy the catalogue in ``path`` here (canonical text); returns its version.

        A catalogue of another version is refused while interactions refer to items that it
        lacks: they would be lost from training without a word.
        """
        catalog = read_catalog(path)
        if self.catalog_path.exists():
            known = set(catalog.raw_ids)
            missing = sorted({item for item in self._all_items() if item not in known})
            if missing:
                raise DataError(
                    f"{len(missing)} recorded item(s), e.g. {missing[0]!r}, are not in this "
                    "catalogue; refusing to replace the node's catalogue with it",
                    path=str(path),
                )
        private_dir(self.data_dir)
        tmp = self.catalog_path.with_suffix(".tmp")
        tmp.write_text(catalog_json(catalog), encoding="utf-8")
        tmp.replace(self.catalog_path)
        return catalog_version(catalog)

    def catalog(self) -> ItemCatalog:
        """The node's catalogue, or a :class:`DataError` saying how to import one."""
        if not self.catalog_path.exists():
            raise DataError(
                f"the node's data folder has no catalogue; import the run's with "
                f"`fedrec node catalog --data-dir {self.data_dir} catalog.json`",
                path=str(self.catalog_path),
            )
        return read_catalog(self.catalog_path)

    # --------------------------------------------------------------- interactions

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        """A connection whose ``with`` block is one transaction (rolled back on error)."""
        private_dir(self.data_dir)
        path = self.data_dir / DB_FILE
        fresh = not path.exists()
        with closing(sqlite3.connect(path)) as conn:
            if fresh:
                path.chmod(0o600)
            conn.execute("PRAGMA foreign_keys = ON")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, _SCHEMA):
                raise DataError(
                    f"schema version {version}, this fedrec reads {_SCHEMA}", path=str(path)
                )
            with conn:
                conn.executescript(_CREATE)
                conn.execute(f"PRAGMA user_version = {_SCHEMA}")
            with conn:
                yield conn

    def _all_items(self) -> list[str]:
        if not (self.data_dir / DB_FILE).exists():
            return []
        with self._db() as conn:
            return [row[0] for row in conn.execute("SELECT DISTINCT item FROM interactions")]

    def record(
        self, rows: list[Interaction], *, where: str | None = None, holdout_newest: bool = False
    ) -> int:
        """Write ``rows`` in one transaction: all of them, or (on any error) none.

        ``holdout_newest``: then mark each user's newest row among ``rows`` for evaluation
        (see the module docstring). Returns how many rows were written.
        """
        known = set(self.catalog().raw_ids)
        params = []
        for n, row in enumerate(rows):
            line = n + 2 if where is not None else None  # CSV lines count the header as 1
            checked = row.checked(where=where, line=line)
            if row.item not in known:
                raise DataError(
                    f"item {row.item!r} is not in the node's catalogue", path=where, line=line
                )
            params.append(checked)
        with self._db() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO users (user) VALUES (?)", [(p["user"],) for p in params]
            )
            conn.executemany(_UPSERT, params)
            # Whatever is written trains, unless marked just below: feedback is never held out.
            conn.executemany(
                "UPDATE interactions SET holdout = 0 WHERE user = :user AND item = :item", params
            )
            if holdout_newest:
                self._hold_out_newest(conn, params)
        return len(params)

    @staticmethod
    def _hold_out_newest(conn: sqlite3.Connection, params: list[dict[str, object]]) -> None:
        newest: dict[str, dict[str, object]] = {}
        for p in params:  # the last of equal timestamps wins, as the file reads
            best = newest.get(str(p["user"]))
            if best is None or int(p["timestamp"]) >= int(best["timestamp"]):  # type: ignore[call-overload]
                newest[str(p["user"])] = p
        for user, p in newest.items():
            (count,) = conn.execute(
                "SELECT COUNT(*) FROM interactions WHERE user = ?", (user,)
            ).fetchone()
            if count >= MIN_FOR_HOLDOUT:
                conn.execute(
                    "UPDATE interactions SET holdout = 1 WHERE user = ? AND item = ?",
                    (user, p["item"]),
                )

    def import_csv(self, path: Path, *, holdout_newest: bool = False) -> int:
        """Record every row of a CSV (header ``user,item[,rating][,timestamp][,kind]``).

        ``kind`` defaults to ``rating`` where the row has a rating, else ``view``. One
        transaction: a bad row is reported with its line and nothing is written.
        """
        path = Path(path).expanduser()
        if not path.is_file():
            raise DataError("no such ratings file", path=str(path))
        rows = []
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            columns = set(reader.fieldnames or ())
            if not {"user", "item"} <= columns:
                raise DataError(
                    "header must name user and item (and optionally rating, timestamp, kind)",
                    path=str(path),
                    line=1,
                )
            for line, raw in enumerate(reader, start=2):
                rating = (raw.get("rating") or "").strip()
                stamp = (raw.get("timestamp") or "").strip()
                try:
                    value = float(rating) if rating else None
                    when = int(stamp) if stamp else None
                except ValueError as err:
                    raise DataError(f"not a number ({err})", path=str(path), line=line) from None
                kind = (raw.get("kind") or "").strip() or (
                    "rating" if value is not None else "view"
                )
                rows.append(
                    Interaction(
                        (raw.get("user") or "").strip(),
                        (raw.get("item") or "").strip(),
                        kind,
                        value,
                        when,
                    )
                )
        return self.record(rows, where=str(path), holdout_newest=holdout_newest)

    def rows(self, *, implicit_threshold: float = 0.0) -> UserRows:
        """Every user's rows as catalogue indices (see :class:`UserRows`)."""
        index = {raw: i for i, raw in enumerate(self.catalog().raw_ids)}
        with self._db() as conn:
            users = [row[0] for row in conn.execute("SELECT user FROM users ORDER BY idx")]
            found = conn.execute(
                "SELECT user, item, rating, kind, holdout FROM interactions "
                "ORDER BY timestamp DESC, item"
            ).fetchall()
        per: dict[str, list[tuple[int, bool, bool]]] = {u: [] for u in users}
        for user, item, rating, kind, holdout in found:
            if item not in index:
                raise DataError(
                    f"recorded item {item!r} is not in the node's catalogue",
                    path=str(self.catalog_path),
                )
            positive = kind != "rating" or rating >= implicit_threshold
            per[user].append((index[item], positive, bool(holdout)))
        return UserRows(
            user_ids=users,
            items=[np.array([r[0] for r in per[u]], dtype=np.int64) for u in users],
            positive=[np.array([r[1] for r in per[u]], dtype=bool) for u in users],
            holdout=[np.array([r[2] for r in per[u]], dtype=bool) for u in users],
        )
