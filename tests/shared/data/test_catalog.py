from __future__ import annotations

import numpy as np
import pytest

from fedrec.shared.data.catalog import (
    ItemRows,
    build_catalog,
    item_text,
    parse_release_year,
    parse_year,
    top_tags,
)
from fedrec.shared.errors import DataError


@pytest.mark.parametrize(
    ("title", "year"),
    [
        ("Toy Story (1995)", 1995),
        ("City of Lost Children, The (Cité des enfants perdus, La) (1995) ", 1995),
        ("Fawlty Towers (1975-1979)", 1975),
        ("Babylon 5", None),
        ("1984", None),
        ("unknown", None),
    ],
)
def test_parse_year(title: str, year: int | None) -> None:
    assert parse_year(title) == year


def test_parse_release_year() -> None:
    assert parse_release_year("01-Jan-1995") == 1995
    assert parse_release_year("1997-05-01") == 1997
    assert parse_release_year("") is None
    assert parse_release_year(None) is None


def test_item_text() -> None:
    assert (
        item_text("Toy Story (1995)", ["Animation", "Children's", "Comedy"])
        == "Toy Story (1995). Genres: Animation, Children's, Comedy."
    )
    assert item_text("Heat", [], year=1995, tags=["pixar", "fun"]) == (
        "Heat (1995). Tags: pixar, fun."
    )
    assert item_text("Airplane!", []) == "Airplane!"
    assert item_text("", ["Drama"]) == "Untitled. Genres: Drama."


def test_top_tags_case_folded_ranked_and_capped() -> None:
    items = ["1"] * 6 + ["2"]
    tags = ["Fun", "fun", "pixar", " Pixar ", "zzz", "", "x"]

    ranked = top_tags(items, tags, limit=2)

    assert ranked == {"1": ["fun", "pixar"], "2": ["x"]}


def test_build_catalog_sorts_by_numeric_id() -> None:
    rows = ItemRows(
        path="items",
        raw_ids=np.array([10, 2, 1]),
        lines=np.array([1, 2, 3]),
        titles=["Ten (2000)", "Two", "One"],
        genres=[["Drama"], [], []],
        years=[None, 1990, None],
    )

    catalog = build_catalog(rows, tags={"2": ["odd"]})

    assert catalog.raw_ids == ["1", "2", "10"]
    assert catalog.titles == ["One", "Two", "Ten (2000)"]
    assert catalog.years == [None, 1990, 2000]
    assert catalog.texts == ["One.", "Two (1990). Tags: odd.", "Ten (2000). Genres: Drama."]


def test_build_catalog_rejects_repeated_ids() -> None:
    rows = ItemRows(
        path="items.csv",
        raw_ids=np.array(["a", "b", "a"]),
        lines=np.array([2, 3, 4]),
        titles=["A", "B", "A2"],
        genres=[[], [], []],
    )

    with pytest.raises(DataError) as info:
        build_catalog(rows)

    assert (info.value.path, info.value.line) == ("items.csv", 4)
