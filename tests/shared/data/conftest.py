"""Tiny synthetic data sets in every supported format, written into tmp_path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

GENRES = [
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
]  # fmt: skip


def _flags(*names: str) -> str:
    return "|".join("1" if g in names else "0" for g in GENRES)


Writer = Callable[..., Path]


@pytest.fixture
def write(tmp_path: Path) -> Writer:
    """write("name", "text", encoding=...) -> the path, under tmp_path."""

    def _write(name: str, text: str, *, encoding: str = "utf-8", folder: Path = tmp_path) -> Path:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode(encoding))
        return path

    return _write


# ml-100k: users 1, 2, 10 (numeric order != text order); item 3 is never rated (cold).
ML100K_DATA = "1\t1\t5\t100\n1\t2\t3\t200\n2\t1\t4\t150\n10\t2\t1\t50\n"
TOY_FLAGS = _flags("Animation", "Children's", "Comedy")
ML100K_ITEM = (
    f"1|Toy Story (1995)|01-Jan-1995||http://x/1|{TOY_FLAGS}\n"
    f"2|Café Society (1995)|01-Jan-1995||http://x/2|{_flags('Drama')}\n"
    f"3|Cold Item|01-Jan-1997||http://x/3|{_flags('unknown')}\n"
)
ML100K_USER = "1|24|M|technician|85711\n2|53|F|other|94043\n10|30|M|writer|32067\n"


@pytest.fixture
def ml100k_dir(tmp_path: Path, write: Writer) -> Path:
    folder = tmp_path / "ml-100k"
    write("u.data", ML100K_DATA, folder=folder)
    write("u.item", ML100K_ITEM, encoding="latin-1", folder=folder)
    write("u.user", ML100K_USER, encoding="latin-1", folder=folder)
    return folder


ML1M_RATINGS = "1::10::5::978300760\n1::20::3::978302109\n2::10::4::978301968\n"
ML1M_MOVIES = "10::Amélie (2001)::Comedy|Romance\n20::Heat (1995)::Action|Crime|Thriller\n"
ML1M_USERS = "1::F::1::10::48067\n2::M::56::12::70072\n"


@pytest.fixture
def ml1m_dir(tmp_path: Path, write: Writer) -> Path:
    folder = tmp_path / "ml-1m"
    write("ratings.dat", ML1M_RATINGS, folder=folder)
    write("movies.dat", ML1M_MOVIES, encoding="latin-1", folder=folder)
    write("users.dat", ML1M_USERS, folder=folder)
    return folder


LATEST_RATINGS = (
    "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,2,3.5,964981247\n2,1,5.0,964982224\n"
)
LATEST_MOVIES = (
    "movieId,title,genres\n"
    "1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy\n"
    '2,"American President, The (1995)",Comedy|Drama|Romance\n'
    "3,Untitled Film,(no genres listed)\n"
)
LATEST_TAGS = (
    'userId,movieId,tag,timestamp\n1,1,pixar,1\n2,1,Pixar,2\n2,1,fun,3\n1,2,"politics, romance",4\n'
)


@pytest.fixture
def latest_dir(tmp_path: Path, write: Writer) -> Path:
    folder = tmp_path / "ml-latest-small"
    write("ratings.csv", LATEST_RATINGS, folder=folder)
    write("movies.csv", LATEST_MOVIES, folder=folder)
    write("tags.csv", LATEST_TAGS, folder=folder)
    return folder


@pytest.fixture(scope="session")
def ml100k_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real embedded MovieLens-100K, downloaded once per test session (needs PyPI)."""
    from fedrec.shared.data.sources import ensure_ml100k

    cache = tmp_path_factory.mktemp("fedrec-cache") / "ml-100k"
    ensure_ml100k(cache)
    return cache
