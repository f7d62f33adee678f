from __future__ import annotations

import pytest

from fedrec.shared.data.generic import load_generic
from fedrec.shared.errors import DataError


def test_ratings_only_with_text_ids_defaults_rating_and_time(write) -> None:
    path = write("events.csv", "user,item\nbob,song-b\nalice,song-a\nbob,song-a\n")

    ds = load_generic(path)

    assert ds.name == "generic"
    assert ds.user_raw_ids == ["alice", "bob"]
    assert ds.items.raw_ids == ["song-a", "song-b"]
    assert ds.items.texts == ["Item song-a.", "Item song-b."]
    assert ds.interactions.users.tolist() == [1, 0, 1]
    assert ds.interactions.items.tolist() == [1, 0, 0]
    assert ds.interactions.ratings.tolist() == [1.0, 1.0, 1.0]
    assert ds.interactions.timestamps.tolist() == [0, 0, 0]


def test_integer_text_ids_sort_numerically(write) -> None:
    path = write("r.csv", "user,item,rating\n10,2,4\n9,10,3\n")

    ds = load_generic(path)

    assert ds.user_raw_ids == ["9", "10"]
    assert ds.items.raw_ids == ["2", "10"]


def test_custom_columns_and_items_file_with_text_columns(write) -> None:
    ratings = write("r.csv", "uid,sku,stars,ts\nu1,A1,4.5,10\nu2,B2,2,20\n")
    items = write(
        "catalog.csv",
        "sku,name,tags,blurb\n"
        'A1,"Kettle, steel (2019)",Kitchen|Metal,Boils water fast\n'
        "B2,Mug,,\n"
        "C3,Teapot,Kitchen,A cold item.\n",
    )

    ds = load_generic(
        ratings,
        items_path=items,
        user_col="uid",
        item_col="sku",
        rating_col="stars",
        timestamp_col="ts",
        title_col="name",
        genres_col="tags",
        text_cols=("blurb",),
    )

    assert ds.items.raw_ids == ["A1", "B2", "C3"]
    assert ds.n_items == 3
    assert (
        ds.items.texts[0]
        == "Kettle, steel (2019). Genres: Kitchen, Metal. Blurb: Boils water fast."
    )
    assert ds.items.texts[1] == "Mug."
    assert ds.items.texts[2] == "Teapot. Genres: Kitchen. Blurb: A cold item."
    assert ds.items.years == [2019, None, None]
    assert ds.interactions.ratings.tolist() == [4.5, 2.0]
    assert ds.interactions.timestamps.tolist() == [10, 20]


def test_items_file_without_genres_column(write) -> None:
    ratings = write("r.csv", "user,item\nu,1\n")
    items = write("items.csv", "item,title\n1,Heat (1995)\n")

    ds = load_generic(ratings, items_path=items)

    assert ds.items.genres == [[]]
    assert ds.items.texts == ["Heat (1995)."]


@pytest.mark.parametrize(
    ("text", "line", "column", "fragment"),
    [
        ("user,rating\nu,1\n", 1, "item", "found columns: 'user', 'rating'"),
        ("user,item,rating\nu,a,1\nu,b,x\n", 3, "rating", "expected a number"),
        ("user,item,timestamp\nu,a,1\nu,b,2.5\n", 3, "timestamp", "expected an integer"),
        ("user,item,timestamp\nu,a,1\nu,b,-2\n", 3, "timestamp", "negative"),
        ("user,item\nu,a\n,b\n", 3, "user", "empty id"),
        ("user,item\nu,a\nv,b\nu,a\n", 4, "item", "1 duplicate (user, item)"),
        ("user,item\n", 2, None, "no data rows"),
        ("", 1, None, "empty"),
    ],
)
def test_malformed_ratings(write, text: str, line: int, column: str | None, fragment: str) -> None:
    path = write("r.csv", text)

    with pytest.raises(DataError) as info:
        load_generic(path)

    err = info.value
    assert (err.path, err.line, err.column) == (str(path), line, column)
    assert fragment in str(err)


def test_rated_item_missing_from_items_file(write) -> None:
    ratings = write("r.csv", "user,item\nu,a\nu,zz\n")
    items = write("items.csv", "item,title\na,A\n")

    with pytest.raises(DataError) as info:
        load_generic(ratings, items_path=items)

    err = info.value
    assert (err.path, err.line, err.column) == (str(ratings), 3, "item")
    assert "item zz is not in the items file" in str(err)
    assert str(items) in str(err)


def test_items_file_missing_title_column(write) -> None:
    ratings = write("r.csv", "user,item\nu,a\n")
    items = write("items.csv", "item,name\na,A\n")

    with pytest.raises(DataError) as info:
        load_generic(ratings, items_path=items)

    assert (info.value.path, info.value.line, info.value.column) == (str(items), 1, "title")
