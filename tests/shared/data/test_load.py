from __future__ import annotations

from pathlib import Path

import pytest

from fedrec.shared.config import DataConfig
from fedrec.shared.data import load_dataset, load_split, partition_users
from fedrec.shared.errors import DataError


@pytest.fixture(autouse=True)
def fresh_cache():
    load_split.cache_clear()
    yield
    load_split.cache_clear()


@pytest.mark.parametrize(
    ("dataset", "folder", "name"),
    [
        ("ml-100k", "ml100k_dir", "ml-100k"),
        ("ml-1m", "ml1m_dir", "ml-1m"),
        ("ml-latest", "latest_dir", "ml-latest"),
    ],
)
def test_dispatch_on_folders(request, dataset: str, folder: str, name: str) -> None:
    path = request.getfixturevalue(folder)

    ds = load_dataset(DataConfig(dataset=dataset, data_path=str(path)))

    assert ds.name == name


def test_generic_uses_items_csv_beside_the_ratings(write) -> None:
    ratings = write("data/events.csv", "user,item\nu,1\nu,2\n")
    write("data/items.csv", "item,title\n1,One (1990)\n2,Two\n3,Three\n")

    ds = load_dataset(DataConfig(dataset="generic", data_path=str(ratings)))

    assert ds.n_items == 3
    assert ds.items.texts[0] == "One (1990)."


def test_generic_without_items_csv(write) -> None:
    ratings = write("events.csv", "user,item\nu,1\n")

    assert load_dataset(DataConfig(dataset="generic", data_path=str(ratings))).n_items == 1


@pytest.mark.parametrize("dataset", ["ml-1m", "ml-latest", "generic"])
def test_formats_that_need_a_path(dataset: str) -> None:
    with pytest.raises(DataError, match="needs data-path"):
        load_dataset(DataConfig(dataset=dataset))


@pytest.mark.parametrize(
    ("dataset", "expected"),
    [
        ("ml-100k", "u.data, u.item"),
        ("ml-1m", "ratings.dat, movies.dat"),
        ("generic", "ratings CSV"),
    ],
)
def test_missing_path_says_what_files_were_expected(
    tmp_path: Path, dataset: str, expected: str
) -> None:
    missing = tmp_path / "nowhere"

    with pytest.raises(DataError) as info:
        load_dataset(DataConfig(dataset=dataset, data_path=str(missing)))

    assert info.value.path == str(missing)
    assert expected in str(info.value)


def test_load_split_is_cached_per_config(ml100k_dir: Path) -> None:
    cfg = DataConfig(dataset="ml-100k", data_path=str(ml100k_dir))

    first = load_split(cfg)
    second = load_split(DataConfig(dataset="ml-100k", data_path=str(ml100k_dir)))

    assert first is second
    assert load_split.cache_info().misses == 1
    ds, split = first
    assert split.n_users == ds.n_users and split.n_items == ds.n_items
    # user "1" rated items 1 then 2 (test: index 1); users "2" and "10" have one rating each
    assert split.test_items.tolist() == [1, -1, -1]


def test_load_split_applies_the_implicit_threshold(ml100k_dir: Path) -> None:
    _, split = load_split(
        DataConfig(dataset="ml-100k", data_path=str(ml100k_dir), implicit_threshold=4)
    )

    assert sorted(split.train.ratings.tolist()) == [4.0, 5.0]


def test_embedded_default_through_load_split(ml100k_cache: Path, monkeypatch) -> None:
    monkeypatch.setenv("FEDREC_CACHE_DIR", str(ml100k_cache.parent))

    ds, split = load_split(DataConfig())

    assert (ds.n_users, ds.n_items) == (943, 1682)
    assert int((split.test_items >= 0).sum()) == 943  # every ML-100K user has 20+ ratings
    assert int((split.valid_items >= 0).sum()) == 943
    assert len(split.train) == 100_000 - 2 * 943
    parts = partition_users(split.n_users, num_partitions=943, seed=42)
    assert len(parts) == 943
