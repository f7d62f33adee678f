"""Read delimited text files (comma, tab, pipe or ``::``) into typed columns.

Every row keeps its 1-based physical line number, so any later check can point at the
line to fix. Files made only of numbers (the big ratings files) are parsed in blocks of
about 16 MB by ``np.loadtxt``; a block is accepted only if it yields exactly one row per
line. Anything else -- text columns, quotes, blank lines, a bad value -- goes through the
Python path (``csv`` or ``str.split``), which converts a chunk at a time and, when a chunk
fails, scans it to name the first bad line. Blank lines are skipped; every other line must
have exactly as many fields as the header (or the format's positional column names).
"""

from __future__ import annotations

import csv
import io
import itertools
import logging
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TextIO

import numpy as np

from fedrec.shared.errors import DataError

logger = logging.getLogger(__name__)

Kind = Literal["int", "float", "str"]

_CHUNK_ROWS = 1 << 18
_BLOCK_CHARS = 1 << 24  # about 16 MB of text per numpy fast-path block
_DTYPES = {"int": np.int64, "float": np.float64}
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class Field:
    """One column to read: its name, its type, and whether the file must have it."""

    name: str
    kind: Kind = "str"
    required: bool = True


@dataclass(frozen=True)
class Table:
    """Columns read from one file; ``lines[i]`` is the 1-based line number of row ``i``.

    ``found`` lists the file's column names (the header, or the format's positional
    names). Optional fields the file lacks are absent from ``columns``.
    """

    path: str
    found: list[str]
    lines: np.ndarray
    columns: dict[str, np.ndarray | list[str]]

    def __len__(self) -> int:
        return int(self.lines.shape[0])

    def has(self, name: str) -> bool:
        """Tell whether the file has the column ``name``."""
        return name in self.columns

    def array(self, name: str) -> np.ndarray:
        """Return a numeric (``int`` or ``float``) column."""
        values = self.columns[name]
        if not isinstance(values, np.ndarray):
            raise TypeError(f"column {name!r} was read as text, not as numbers")
        return values

    def strings(self, name: str) -> list[str]:
        """Return a text column (values stripped of surrounding whitespace)."""
        values = self.columns[name]
        if isinstance(values, np.ndarray):
            raise TypeError(f"column {name!r} was read as numbers, not as text")
        return values


class _BadValue(Exception):
    def __init__(self, index: int, value: str) -> None:
        self.index = index
        self.value = value


def _first_bad(values: Sequence[str], kind: Kind) -> tuple[int, str]:
    """Find the first entry that does not convert, and its index (error path only)."""
    for i, value in enumerate(values):
        try:
            if kind == "int":
                if not _INT64_MIN <= int(value) <= _INT64_MAX:
                    return i, value
            else:
                float(value)
        except ValueError:
            return i, value
    return 0, values[0] if values else ""


def _convert(values: Sequence[str], kind: Kind) -> np.ndarray | list[str]:
    """Convert one chunk of a column; raises ``_BadValue`` naming the first bad entry."""
    if kind == "str":
        return [v.strip() for v in values]
    parse: type[int] | type[float] = int if kind == "int" else float
    try:
        return np.fromiter(map(parse, values), dtype=_DTYPES[kind], count=len(values))
    except (ValueError, OverflowError):
        index, value = _first_bad(values, kind)
        raise _BadValue(index, value) from None


def _undecodable_line(path: str | Path, encoding: str) -> int | None:
    """Find the first line that does not decode (error path only)."""
    with open(path, "rb") as raw:
        for number, line in enumerate(raw, start=1):
            try:
                line.decode(encoding)
            except UnicodeDecodeError:
                return number
    return None


def _describe_sep(sep: str) -> str:
    return {"\t": "tabs", ",": "commas", "|": "'|'", "::": "'::'"}.get(sep, repr(sep))


class _Reader:
    """Accumulates the wanted columns of one file, block by block."""

    def __init__(
        self, path: str, found: list[str], wanted: list[tuple[Field, int]], sep: str, quoted: bool
    ) -> None:
        self.path, self.found, self.wanted, self.sep, self.quoted = path, found, wanted, sep, quoted
        self.lines: list[np.ndarray] = []
        self.parts: dict[str, list[np.ndarray | list[str]]] = {f.name: [] for f, _ in wanted}
        # the numpy fast path applies when every column of the file is a wanted number
        numeric = len(wanted) == len(found) and all(f.kind != "str" for f, _ in wanted)
        self.dtype = (
            np.dtype([(f"c{i}", _DTYPES[f.kind]) for f, i in sorted(wanted, key=lambda w: w[1])])
            if numeric
            else None
        )

    def add_fast(self, block: list[str], before: int) -> bool:
        """Parse a block of lines in C with ``np.loadtxt``; False if it needs the slow path.

        Only blocks that parse completely, one row per line, are taken, so line numbers
        stay exact; anything unusual (blank lines, quotes, bad values) goes the slow way,
        which finds the first bad line.
        """
        if self.dtype is None:
            return False
        text = "".join(block)
        delimiter = self.sep
        if len(self.sep) > 1:
            if "\t" in text:
                return False
            text, delimiter = text.replace(self.sep, "\t"), "\t"
        if '"' in text:
            return False
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                data = np.loadtxt(
                    io.StringIO(text), delimiter=delimiter, dtype=self.dtype, comments=None, ndmin=1
                )
        except (ValueError, OverflowError, IndexError):
            return False
        if data.shape[0] != len(block):
            return False
        self.lines.append(np.arange(before + 1, before + len(block) + 1, dtype=np.int64))
        for f, index in self.wanted:
            self.parts[f.name].append(np.ascontiguousarray(data[f"c{index}"]))
        return True

    def add_rows(self, numbers: np.ndarray, rows: list[list[str]]) -> None:
        """Check the field counts of parsed rows and convert their wanted columns."""
        expected = len(self.found)
        counts = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
        bad = np.flatnonzero(counts != expected)
        if bad.size:
            got = int(counts[bad[0]])
            hint = " (quote fields that contain the separator)" if got > expected else ""
            raise DataError(
                f"expected {expected} fields separated by {_describe_sep(self.sep)} "
                f"({', '.join(self.found)}), found {got}{hint}",
                path=self.path,
                line=int(numbers[bad[0]]),
                column=self.found[got] if got < expected else None,
            )
        for f, index in self.wanted:
            try:
                self.parts[f.name].append(_convert([r[index] for r in rows], f.kind))
            except _BadValue as exc:
                kind = "an integer" if f.kind == "int" else "a number"
                raise DataError(
                    f"expected {kind}, got {exc.value!r}",
                    path=self.path,
                    line=int(numbers[exc.index]),
                    column=f.name,
                ) from None
        self.lines.append(numbers)

    def add_plain(self, lines: Iterator[str], before: int) -> None:
        """Split unquoted lines on the separator, a chunk at a time."""
        while block := list(itertools.islice(lines, _CHUNK_ROWS)):
            stripped = [line.rstrip("\r\n") for line in block]
            keep = np.flatnonzero(
                np.fromiter((bool(x.strip()) for x in stripped), dtype=bool, count=len(block))
            )
            numbers = before + 1 + keep
            before += len(block)
            if keep.size < len(block):
                stripped = [stripped[i] for i in keep.tolist()]
            self.add_rows(numbers, [x.split(self.sep) for x in stripped])

    def add_csv(self, lines: Iterator[str], before: int) -> None:
        """Parse CSV lines (quoted fields may hold the separator or line breaks)."""
        reader = csv.reader(lines, delimiter=self.sep)
        numbers: list[int] = []
        rows: list[list[str]] = []
        try:
            for row in reader:
                if len(row) > 1 or (row and row[0].strip()):
                    numbers.append(before + reader.line_num)
                    rows.append(row)
                    if len(rows) == _CHUNK_ROWS:
                        self.add_rows(np.asarray(numbers, dtype=np.int64), rows)
                        numbers, rows = [], []
        except csv.Error as exc:
            raise DataError(
                f"cannot parse the line: {exc}", path=self.path, line=before + reader.line_num
            ) from None
        if rows:
            self.add_rows(np.asarray(numbers, dtype=np.int64), rows)

    def read(self, handle: TextIO, before: int) -> None:
        """Read the rest of the file: fast blocks while they parse, then the slow path."""
        rest: Iterator[str] = handle
        while self.dtype is not None:
            block = handle.readlines(_BLOCK_CHARS)
            if not block:
                return
            if not self.add_fast(block, before):
                rest = itertools.chain(block, handle)
                break
            before += len(block)
        if self.quoted and len(self.sep) == 1:
            self.add_csv(rest, before)
        else:
            self.add_plain(rest, before)

    def table(self) -> Table:
        """Concatenate the chunks read so far into a :class:`Table`."""
        columns: dict[str, np.ndarray | list[str]] = {}
        for f, _ in self.wanted:
            chunks = self.parts[f.name]
            if f.kind == "str":
                columns[f.name] = [v for chunk in chunks for v in chunk]
            else:
                columns[f.name] = (
                    np.concatenate([np.asarray(c) for c in chunks])
                    if chunks
                    else np.zeros(0, _DTYPES[f.kind])
                )
        lines = np.concatenate(self.lines) if self.lines else np.zeros(0, np.int64)
        return Table(path=self.path, found=self.found, lines=lines, columns=columns)


def _read_header(handle: TextIO, sep: str, quoted: bool, path: str) -> tuple[list[str], int]:
    """Return the names on the first non-blank line and how many lines that took."""
    consumed = 0
    while line := handle.readline():
        consumed += 1
        if line.strip():
            if quoted and len(sep) == 1:
                names = next(csv.reader([line], delimiter=sep))
            else:
                names = line.rstrip("\r\n").split(sep)
            return [name.strip() for name in names], consumed
    raise DataError("the file is empty (expected a header line)", path=path, line=1)


def read_table(
    path: str | Path,
    fields: Sequence[Field],
    *,
    sep: str = ",",
    header: bool = True,
    names: Sequence[str] | None = None,
    encoding: str = "utf-8",
    quoted: bool = True,
) -> Table:
    """Read the ``fields`` of a delimited text file, checking its shape as it goes.

    ``header=True`` takes the column names from the first line; otherwise ``names`` gives
    them by position. ``quoted`` enables CSV quoting (``"a, b"`` is one field; only for
    one-character separators). Raises :class:`DataError` with the path, the 1-based line
    and the column for: a missing or empty file, a header without data rows, missing
    required columns, a line with the wrong number of fields, and a value that is not a
    number where one is expected.
    """
    where = str(path)
    if not header and names is None:
        raise ValueError("a file without a header needs positional column names")
    if header and encoding.lower().replace("_", "-") in ("utf-8", "utf8"):
        encoding = "utf-8-sig"  # tolerate the byte-order mark spreadsheets write
    try:
        handle = open(path, encoding=encoding, newline="")
    except FileNotFoundError:
        raise DataError("file not found", path=where) from None
    except IsADirectoryError:
        raise DataError("expected a file, found a folder", path=where) from None
    with handle:
        try:
            found, before = (
                _read_header(handle, sep, quoted, where) if header else (list(names or ()), 0)
            )
            missing = [f.name for f in fields if f.required and f.name not in found]
            if missing:
                raise DataError(
                    f"missing required column(s) {', '.join(map(repr, missing))}; "
                    f"found columns: {', '.join(map(repr, found)) or 'none'}",
                    path=where,
                    line=1,
                    column=missing[0],
                )
            wanted = [(f, found.index(f.name)) for f in fields if f.name in found]
            reader = _Reader(where, found, wanted, sep, quoted)
            reader.read(handle, before)
        except UnicodeDecodeError as exc:
            raise DataError(
                f"the file is not valid {encoding} text ({exc.reason}); save it as UTF-8",
                path=where,
                line=_undecodable_line(path, encoding),
            ) from None
    table = reader.table()
    if not len(table):
        what = "has a header but no data rows" if header else "is empty"
        raise DataError(f"the file {what}", path=where, line=before + 1)
    logger.debug("read %d rows from %s", len(table), where)
    return table
