"""Checks shared by every loader, vectorised, each naming the first offending line.

Loaders read files with :mod:`fedrec.shared.data.textio` (or pyarrow for parquet, where a
"line" is the 1-based row number), then hand the parsed arrays and their line numbers to
these helpers. Every failure is a :class:`DataError` carrying path, line and column.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from fedrec.shared.errors import DataError

logger = logging.getLogger(__name__)

_SHOW_DUPLICATES = 5


def require_folder(
    folder: str | Path,
    *,
    required: Sequence[str],
    optional: Sequence[str] = (),
    fmt: str,
) -> dict[str, Path]:
    """Return the paths of a data set's files, or raise a DataError saying what is expected.

    ``folder`` may also name one of the files; its parent folder is used then. Returns a
    mapping from file name to path holding every required file and the optional files
    that exist.
    """
    root = Path(folder).expanduser()
    if root.is_file() and root.name in (*required, *optional):
        root = root.parent
    expected = ", ".join(required)
    if optional:
        expected += f" (and optionally {', '.join(optional)})"
    if not root.is_dir():
        raise DataError(
            f"no such folder; data-path must name a {fmt} folder holding {expected}",
            path=str(root),
        )
    found: dict[str, Path] = {}
    for name in required:
        if not (root / name).is_file():
            raise DataError(
                f"file not found; a {fmt} folder must hold {expected}", path=str(root / name)
            )
        found[name] = root / name
    found.update({name: root / name for name in optional if (root / name).is_file()})
    return found


def check_finite(values: np.ndarray, lines: np.ndarray, *, path: str, column: str) -> None:
    """Check that every value is a finite number (no NaN, no infinity)."""
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        value = float(values[bad[0]])
        raise DataError(
            f"{column} is {value} ({bad.size} such row(s)); every {column} must be a number",
            path=path,
            line=int(lines[bad[0]]),
            column=column,
        )


def check_non_negative(values: np.ndarray, lines: np.ndarray, *, path: str, column: str) -> None:
    """Check that every value is ``>= 0`` (timestamps are seconds since 1970)."""
    bad = np.flatnonzero(values < 0)
    if bad.size:
        raise DataError(
            f"{column} is negative ({values[bad[0]]}; {bad.size} such row(s)); "
            f"{column} must be >= 0 (seconds since 1970, or 0 when unknown)",
            path=path,
            line=int(lines[bad[0]]),
            column=column,
        )


def check_unique(values: np.ndarray, lines: np.ndarray, *, path: str, column: str) -> None:
    """Check that no value appears twice (e.g. an item id in an items file)."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    repeat = np.flatnonzero(ordered[1:] == ordered[:-1])
    if repeat.size:
        # the repeat whose second occurrence comes first in the file
        later = order[repeat + 1]
        k = int(np.argmin(lines[later]))
        first_line, second_line = int(lines[order[repeat[k]]]), int(lines[later[k]])
        raise DataError(
            f"{column} {ordered[repeat[k]]!s} appears twice (lines {first_line} and "
            f"{second_line}); every {column} must be unique",
            path=path,
            line=second_line,
            column=column,
        )


def check_duplicate_pairs(
    users: np.ndarray,
    items: np.ndarray,
    lines: np.ndarray,
    *,
    path: str,
    user_raw: Sequence[str],
    item_raw: Sequence[str],
    columns: tuple[str, str] = ("user", "item"),
) -> None:
    """Check that no (user, item) pair appears twice: duplicates are errors, never dropped.

    ``users``/``items`` are contiguous indices. The error counts the repeated rows and
    lists the first few pairs of lines (in file order) so they can be fixed at the source.
    """
    if users.size < 2:
        return
    n_items = int(items.max()) + 1
    key = users.astype(np.int64) * n_items + items.astype(np.int64)
    order = np.argsort(key, kind="stable")
    ordered = key[order]
    repeat = np.flatnonzero(ordered[1:] == ordered[:-1])
    if not repeat.size:
        return
    earlier, later = order[repeat], order[repeat + 1]
    show = np.argsort(lines[later], kind="stable")[:_SHOW_DUPLICATES]
    pairs = "; ".join(
        f"lines {int(lines[earlier[k]])} and {int(lines[later[k]])} "
        f"({columns[0]} {user_raw[int(users[later[k]])]}, "
        f"{columns[1]} {item_raw[int(items[later[k]])]})"
        for k in show
    )
    raise DataError(
        f"{repeat.size} duplicate ({columns[0]}, {columns[1]}) row(s), first: {pairs}. "
        "Each pair must appear once: keep the row you want (e.g. the latest) and delete "
        "the others",
        path=path,
        line=int(lines[later[show[0]]]),
        column=columns[1],
    )


def index_ids(values: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Return the sorted unique raw ids (as strings) and each value's contiguous index.

    Integer ids sort numerically. Text ids sort numerically too when every one of them is
    an integer (``"2"`` before ``"10"``), otherwise as text.
    """
    unique, inverse = np.unique(values, return_inverse=True)
    inverse = inverse.reshape(-1).astype(np.int64)
    if unique.dtype.kind in "US":
        try:
            numeric = unique.astype(np.int64)
        except (ValueError, OverflowError):
            numeric = None
        if numeric is not None:
            order = np.argsort(numeric, kind="stable")
            rank = np.empty_like(order)
            rank[order] = np.arange(order.size)
            unique, inverse = unique[order], rank[inverse]
    return [str(v) for v in unique.tolist()], inverse


def lookup_ids(
    values: np.ndarray,
    index: Mapping[str, int],
    lines: np.ndarray,
    *,
    path: str,
    column: str,
    missing_hint: str,
) -> np.ndarray:
    """Map raw ids to known indices; an unknown id is a :class:`DataError` at its line."""
    unique, inverse = np.unique(values, return_inverse=True)
    inverse = inverse.reshape(-1)
    keys = [str(v) for v in unique.tolist()]
    mapped = np.fromiter((index.get(k, -1) for k in keys), dtype=np.int64, count=len(keys))
    result = mapped[inverse]
    bad = np.flatnonzero(result < 0)
    if bad.size:
        n_unknown = int(np.count_nonzero(mapped < 0))
        raise DataError(
            f"{column} {values[bad[0]]!s} is not in {missing_hint} "
            f"({n_unknown} unknown id(s) on {bad.size} row(s))",
            path=path,
            line=int(lines[bad[0]]),
            column=column,
        )
    return result
