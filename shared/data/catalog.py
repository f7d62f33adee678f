"""The item catalogue: titles, years, genres, tags, and the one-line text the encoder reads.

``"Toy Story (1995). Genres: Animation, Children's, Comedy. Tags: pixar, fun."`` -- the
title (with its year), the genres, then the item's most frequent tags when a tags file
exists. Items are indexed in sorted raw-id order (see
:func:`~fedrec.shared.data.validate.index_ids`).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from fedrec.shared.data.dataset import ItemCatalog
from fedrec.shared.data.validate import check_unique, index_ids

MAX_TAGS = 10
NO_GENRES = "(no genres listed)"

_TITLE_YEAR = re.compile(r"\((\d{4})(?:[-\u2013]\d{0,4})?\)\s*$")
_DATE_YEAR = re.compile(r"(?<!\d)(\d{4})(?!\d)")


@dataclass(frozen=True)
class ItemRows:
    """Items as read from an items file, in file order, before indexing.

    ``years`` may come from a release-date column; where it is ``None`` (or absent) the
    year is parsed from the title. ``extras`` are extra sentences appended to the text.
    """

    path: str
    raw_ids: np.ndarray  # int64, or str for the generic format
    lines: np.ndarray
    titles: list[str]
    genres: list[list[str]]
    years: list[int | None] | None = None
    extras: list[str] | None = None


def parse_year(title: str) -> int | None:
    """Return the year ending a MovieLens title (``"Heat (1995)"`` -> 1995), else None."""
    match = _TITLE_YEAR.search(title)
    return int(match.group(1)) if match else None


def parse_release_year(date: str | None) -> int | None:
    """Return the year of a release date such as ``"01-Jan-1995"`` or ``"1995-01-01"``."""
    if not date:
        return None
    match = _DATE_YEAR.search(date)
    return int(match.group(1)) if match else None


def split_genres(text: str) -> list[str]:
    """``"Animation|Comedy"`` -> ``["Animation", "Comedy"]``; "(no genres listed)" -> []."""
    return [g.strip() for g in text.split("|") if g.strip() and g.strip() != NO_GENRES]


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else f"{text}."


def item_text(
    title: str,
    genres: Sequence[str],
    *,
    year: int | None = None,
    tags: Sequence[str] = (),
    extra: str = "",
) -> str:
    """Build the single line of text describing one item to the encoder.

    The year is added to the title when the title does not already end with one.
    """
    head = title.strip() or "Untitled"
    if year is not None and parse_year(head) is None:
        head = f"{head} ({year})"
    parts = [_sentence(head)]
    if genres:
        parts.append(f"Genres: {', '.join(genres)}.")
    if tags:
        parts.append(f"Tags: {', '.join(tags)}.")
    if extra.strip():
        parts.append(extra.strip())
    return " ".join(parts)


def top_tags(
    item_ids: Iterable[str], tags: Iterable[str], *, limit: int = MAX_TAGS
) -> dict[str, list[str]]:
    """Rank each item's tags (case-folded), most frequent first, at most ``limit``.

    Ties are broken alphabetically so the text is deterministic.
    """
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for item, tag in zip(item_ids, tags, strict=True):
        tag = " ".join(tag.split()).lower()
        if tag:
            counts[item][tag] += 1
    return {
        item: [t for t, _ in sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]]
        for item, c in counts.items()
    }


def build_catalog(
    rows: ItemRows, *, tags: Mapping[str, Sequence[str]] | None = None
) -> ItemCatalog:
    """Build an :class:`ItemCatalog` in sorted raw-id order from an items file's rows.

    A repeated item id is a :class:`DataError` naming both lines. ``tags`` maps raw item
    ids to their tags (already ranked, see :func:`top_tags`).
    """
    check_unique(rows.raw_ids, rows.lines, path=rows.path, column="item id")
    raw_ids, position = index_ids(rows.raw_ids)
    order = np.empty_like(position)
    order[position] = np.arange(position.size)
    tags = tags or {}
    titles, genres, texts, years = [], [], [], []
    for new, old in enumerate(order.tolist()):
        title = rows.titles[old]
        year = rows.years[old] if rows.years is not None else None
        if year is None:
            year = parse_year(title)
        titles.append(title)
        genres.append(list(rows.genres[old]))
        years.append(year)
        texts.append(
            item_text(
                title,
                rows.genres[old],
                year=year,
                tags=tags.get(raw_ids[new], ()),
                extra=rows.extras[old] if rows.extras is not None else "",
            )
        )
    return ItemCatalog(raw_ids=raw_ids, titles=titles, genres=genres, texts=texts, years=years)


def catalog_from_ids(raw_ids: Sequence[str]) -> ItemCatalog:
    """Build a bare catalogue for data without an items file (the id is the title)."""
    return ItemCatalog(
        raw_ids=list(raw_ids),
        titles=list(raw_ids),
        genres=[[] for _ in raw_ids],
        texts=[f"Item {raw}." for raw in raw_ids],
        years=[None for _ in raw_ids],
    )
