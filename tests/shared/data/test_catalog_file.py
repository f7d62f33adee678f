"""The catalogue file: round trip, a stable version, and clear errors for anything else."""

import json
from pathlib import Path

import pytest

from fedrec.shared.data.catalog import catalog_from_ids
from fedrec.shared.data.catalog_file import catalog_json, catalog_version, read_catalog
from fedrec.shared.errors import DataError


def test_a_catalogue_round_trips_with_the_same_version(tmp_path: Path) -> None:
    catalog = catalog_from_ids(["10", "2", "x"])
    path = tmp_path / "catalog.json"
    path.write_text(catalog_json(catalog))
    again = read_catalog(path)
    assert again == catalog and catalog_version(again) == catalog_version(catalog)
    assert catalog_version(catalog_from_ids(["10", "2"])) != catalog_version(catalog)


def _items(**change: object) -> list[dict[str, object]]:
    item = {"index": 0, "id": "a", "title": "A", "genres": [], "year": None, "text": "A."}
    return [{**item, **change}]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"format": "other", "items": _items()}), "not a fedrec-catalog/1 file"),
        (json.dumps({"format": "fedrec-catalog/1", "items": []}), "holds no items"),
        (json.dumps({"format": "fedrec-catalog/1", "items": _items(index=3)}), "has index 3"),
        (json.dumps({"format": "fedrec-catalog/1", "items": _items(id=7)}), "'id' is missing"),
        (json.dumps({"format": "fedrec-catalog/1", "items": _items(year="1990")}), "'year'"),
        (
            json.dumps({"format": "fedrec-catalog/1", "items": _items() + _items(index=1)}),
            "occurs twice",
        ),
    ],
)
def test_anything_else_is_refused_with_the_reason(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "catalog.json"
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        read_catalog(path)
    with pytest.raises(DataError, match="no such catalogue file"):
        read_catalog(tmp_path / "absent.json")
