"""The item catalogue as one JSON file (``fedrec-catalog/1``), and its version.

Every run directory holds one (``catalog.json``, written by the server); the same file is
what ``fedrec catalog`` exports from a data set, what a server whose clients hold their own
data reads (``data-source = node``), and what an edge node imports into its data folder.
The global model's rows follow the catalogue's order, so server and nodes must hold the
same one: its *version* is the SHA-256 of its canonical text (:func:`catalog_json`), which
is also what a checkpoint's manifest records as ``catalog_sha256``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from fedrec.shared.data.dataset import ItemCatalog
from fedrec.shared.errors import DataError

FORMAT = "fedrec-catalog/1"


def catalog_json(catalog: ItemCatalog) -> str:
    """The canonical text of ``catalog`` (the same catalogue always gives the same text)."""
    items = [
        {
            "index": i,
            "id": catalog.raw_ids[i],
            "title": catalog.titles[i],
            "genres": catalog.genres[i],
            "year": catalog.years[i] if catalog.years else None,
            "text": catalog.texts[i],
        }
        for i in range(len(catalog))
    ]
    return json.dumps({"format": FORMAT, "items": items})


def catalog_version(catalog: ItemCatalog) -> str:
    """The catalogue's version: the SHA-256 of its canonical text."""
    return hashlib.sha256(catalog_json(catalog).encode()).hexdigest()


def _field(item: Any, name: str, kind: type | tuple[type, ...], path: str, n: int) -> Any:
    value = item.get(name) if isinstance(item, dict) else None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise DataError(f"item {n}: {name!r} is missing or not a {kind}", path=path)
    return value


def parse_catalog(text: str, *, path: str) -> ItemCatalog:
    """An :class:`ItemCatalog` from a ``fedrec-catalog/1`` text, or a :class:`DataError`."""
    try:
        data = json.loads(text)
    except ValueError as err:
        raise DataError(f"not valid JSON ({err}); expected a {FORMAT} file", path=path) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise DataError(
            f"not a {FORMAT} file (a run's catalog.json, or `fedrec catalog --out FILE`)",
            path=path,
        )
    items = data.get("items")
    if not isinstance(items, list) or not items:
        raise DataError("the catalogue holds no items", path=path)
    raw_ids, titles, genres, texts, years = [], [], [], [], []
    for n, item in enumerate(items):
        if _field(item, "index", int, path, n) != n:
            raise DataError(
                f"item {n} has index {item['index']}; keep the items in order", path=path
            )
        raw_ids.append(_field(item, "id", str, path, n))
        titles.append(_field(item, "title", str, path, n))
        texts.append(_field(item, "text", str, path, n))
        tags = _field(item, "genres", list, path, n)
        if not all(isinstance(g, str) for g in tags):
            raise DataError(f"item {n}: 'genres' must be a list of strings", path=path)
        genres.append(list(tags))
        year = item.get("year")
        if year is not None and (not isinstance(year, int) or isinstance(year, bool)):
            raise DataError(f"item {n}: 'year' must be an integer or null", path=path)
        years.append(year)
    if len(set(raw_ids)) != len(raw_ids):
        raise DataError("an item id occurs twice; ids must be unique", path=path)
    return ItemCatalog(raw_ids=raw_ids, titles=titles, genres=genres, texts=texts, years=years)


def read_catalog(path: str | Path) -> ItemCatalog:
    """The catalogue in the ``fedrec-catalog/1`` file ``path``."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(
            f"no such catalogue file; expected a {FORMAT} file (a run's catalog.json, or "
            "`fedrec catalog --out FILE`)",
            path=str(path),
        )
    return parse_catalog(path.read_text(encoding="utf-8"), path=str(path))
