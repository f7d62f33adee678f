from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fedrec.shared.data.movielens import load_ml1m, load_ml100k, load_ml_latest
from fedrec.shared.errors import DataError

# ---------------------------------------------------------------- ml-100k folder


def test_ml100k_folder_loads_with_contiguous_sorted_indices(ml100k_dir: Path) -> None:
    ds = load_ml100k(ml100k_dir)

    assert ds.name == "ml-100k"
    assert ds.user_raw_ids == ["1", "2", "10"]  # numeric order, not text order
    assert ds.n_users == 3
    assert ds.items.raw_ids == ["1", "2", "3"]
    assert ds.n_items == 3  # item 3 is never rated but stays (cold item)
    inter = ds.interactions
    assert inter.users.tolist() == [0, 0, 1, 2]
    assert inter.items.tolist() == [0, 1, 0, 1]
    assert inter.ratings.dtype == np.float32
    assert inter.ratings.tolist() == [5.0, 3.0, 4.0, 1.0]
    assert inter.timestamps.tolist() == [100, 200, 150, 50]


def test_ml100k_item_text_genres_years_and_latin1(ml100k_dir: Path) -> None:
    items = load_ml100k(ml100k_dir).items

    assert items.texts[0] == "Toy Story (1995). Genres: Animation, Children's, Comedy."
    assert items.titles[1] == "Café Society (1995)"
    assert items.genres[1] == ["Drama"]
    assert items.genres[2] == []  # the "unknown" flag means no genre
    assert items.years == [1995, 1995, 1997]  # item 3's year comes from its release date
    assert items.texts[2] == "Cold Item (1997)."


def test_ml100k_user_info(ml100k_dir: Path) -> None:
    users = load_ml100k(ml100k_dir).users

    assert users is not None
    assert users.raw_ids == ["1", "2", "10"]
    assert users.ages == [24, 53, 30]
    assert users.occupations == ["technician", "other", "writer"]


def test_ml100k_accepts_a_file_inside_the_folder(ml100k_dir: Path) -> None:
    assert load_ml100k(ml100k_dir / "u.data").n_users == 3


@pytest.mark.parametrize(
    ("u_data", "line", "column", "fragment"),
    [
        ("1\t1\t5\t100\n1\t2\t3\n", 2, "timestamp", "expected 4 fields"),
        ("1\t1\t5\t100\n1\t2\t3\t200\t9\n", 2, None, "found 5"),
        ("1\t1\t5\t100\nbob\t2\t3\t200\n", 2, "user_id", "expected an integer, got 'bob'"),
        ("1\t1\t5\t100\n1\t2\tgood\t200\n", 2, "rating", "expected a number, got 'good'"),
        ("1\t1\t5\t100\n1\t2\t3\tnoon\n", 2, "timestamp", "got 'noon'"),
        ("1\t1\t5\t100\n1\t2\tnan\t200\n", 2, "rating", "nan"),
        ("1\t1\t5\t100\n\n1\t2\t3\t-5\n", 3, "timestamp", "negative"),
        ("1\t1\t5\t100\n1\t7\t3\t200\n", 2, "item_id", "item_id 7 is not in the items file"),
        ("", 1, None, "empty"),
    ],
)
def test_ml100k_malformed_ratings_name_file_line_and_column(
    ml100k_dir: Path,
    write,
    u_data: str,
    line: int,
    column: str | None,
    fragment: str,
) -> None:
    path = write("u.data", u_data, folder=ml100k_dir)

    with pytest.raises(DataError) as info:
        load_ml100k(ml100k_dir)

    err = info.value
    assert (err.path, err.line, err.column) == (str(path), line, column)
    assert fragment in str(err)


def test_ml100k_duplicates_are_reported_never_dropped(ml100k_dir: Path, write) -> None:
    rows = "1\t1\t5\t100\n1\t2\t3\t200\n2\t1\t4\t150\n1\t1\t2\t300\n2\t1\t4\t150\n1\t1\t1\t9\n"
    path = write("u.data", rows, folder=ml100k_dir)

    with pytest.raises(DataError) as info:
        load_ml100k(ml100k_dir)

    err = info.value
    assert (err.path, err.line, err.column) == (str(path), 4, "item_id")
    message = str(err)
    assert "3 duplicate (user_id, item_id) row(s)" in message
    assert "lines 1 and 4 (user_id 1, item_id 1)" in message
    assert "lines 3 and 5" in message
    assert message.index("lines 1 and 4") < message.index("lines 3 and 5")


def test_ml100k_missing_file_says_what_is_expected(ml100k_dir: Path) -> None:
    (ml100k_dir / "u.item").unlink()

    with pytest.raises(DataError) as info:
        load_ml100k(ml100k_dir)

    assert info.value.path == str(ml100k_dir / "u.item")
    assert "u.data, u.item" in str(info.value)


def test_ml100k_without_users_file_has_no_user_info(ml100k_dir: Path) -> None:
    (ml100k_dir / "u.user").unlink()

    assert load_ml100k(ml100k_dir).users is None


def test_ml100k_duplicate_item_id_names_both_lines(ml100k_dir: Path, write) -> None:
    flags = "|".join(["0"] * 19)
    text = f"1|A (1990)|||x|{flags}\n2|B (1991)|||x|{flags}\n1|C (1992)|||x|{flags}\n"
    path = write("u.item", text, encoding="latin-1", folder=ml100k_dir)

    with pytest.raises(DataError) as info:
        load_ml100k(ml100k_dir)

    err = info.value
    assert (err.path, err.line, err.column) == (str(path), 3, "item id")
    assert "lines 1 and 3" in str(err)


# ---------------------------------------------------------------- ml-1m folder


def test_ml1m_folder(ml1m_dir: Path) -> None:
    ds = load_ml1m(ml1m_dir)

    assert ds.name == "ml-1m"
    assert (ds.n_users, ds.n_items, len(ds.interactions)) == (2, 2, 3)
    assert ds.items.raw_ids == ["10", "20"]
    assert ds.items.titles[0] == "Amélie (2001)"
    assert ds.items.texts[0] == "Amélie (2001). Genres: Comedy, Romance."
    assert ds.items.years == [2001, 1995]
    assert ds.users is not None
    assert ds.users.occupations == ["K-12 student", "programmer"]
    assert ds.users.genders == ["F", "M"]
    assert ds.users.ages == [1, 56]


def test_ml1m_unknown_occupation_code(ml1m_dir: Path, write) -> None:
    path = write("users.dat", "1::F::1::10::48067\n2::M::56::21::70072\n", folder=ml1m_dir)

    with pytest.raises(DataError) as info:
        load_ml1m(ml1m_dir)

    assert (info.value.path, info.value.line, info.value.column) == (str(path), 2, "occupation")


def test_ml1m_wrong_separator_count(ml1m_dir: Path, write) -> None:
    path = write("ratings.dat", "1::10::5::978300760\n1::20::3:978302109\n", folder=ml1m_dir)

    with pytest.raises(DataError) as info:
        load_ml1m(ml1m_dir)

    err = info.value
    assert (err.path, err.line, err.column) == (str(path), 2, "timestamp")
    assert "'::'" in str(err)


# ---------------------------------------------------------------- ml-latest folder


def test_ml_latest_folder_quoted_titles_and_tags(latest_dir: Path) -> None:
    ds = load_ml_latest(latest_dir)

    assert ds.name == "ml-latest"
    assert (ds.n_users, ds.n_items, len(ds.interactions)) == (2, 3, 3)
    assert ds.interactions.ratings.tolist() == [4.0, 3.5, 5.0]
    assert ds.items.titles[1] == "American President, The (1995)"
    assert ds.items.genres[2] == []  # "(no genres listed)"
    assert ds.items.texts[0] == (
        "Toy Story (1995). Genres: Adventure, Animation, Children, Comedy, Fantasy. "
        "Tags: pixar, fun."
    )
    assert ds.items.texts[1].endswith("Tags: politics, romance.")
    assert ds.items.texts[2] == "Untitled Film."
    assert ds.items.years == [1995, 1995, None]
    assert ds.users is None


def test_ml_latest_tags_capped_at_ten_most_frequent(latest_dir: Path, write) -> None:
    rows = ["userId,movieId,tag,timestamp"]
    for k in range(12):
        rows += [f"1,1,tag{k:02d},0"] * (20 - k)
    write("tags.csv", "\n".join(rows) + "\n", folder=latest_dir)

    text = load_ml_latest(latest_dir).items.texts[0]

    assert text.endswith("Tags: " + ", ".join(f"tag{k:02d}" for k in range(10)) + ".")


def test_ml_latest_tags_file_is_optional(latest_dir: Path) -> None:
    (latest_dir / "tags.csv").unlink()

    assert "Tags" not in load_ml_latest(latest_dir).items.texts[0]


RATINGS_HEADER = "userId,movieId,rating,timestamp\n"
MOVIES_HEADER = "movieId,title,genres\n1,Toy Story (1995),Comedy\n"


@pytest.mark.parametrize(
    ("name", "text", "line", "column", "fragment"),
    [
        ("ratings.csv", RATINGS_HEADER, 2, None, "no data rows"),
        ("ratings.csv", "userId,movieId,timestamp\n1,1,5\n", 1, "rating", "found columns"),
        ("ratings.csv", RATINGS_HEADER + "1,1,4,5\n1,1,4.5,6\n", 3, "movieId", "1 duplicate"),
        ("ratings.csv", RATINGS_HEADER + "1,1.5,4,5\n", 2, "movieId", "'1.5'"),
        ("movies.csv", MOVIES_HEADER + "2,Heat, The (1995),Action\n", 3, None, "quote fields"),
        ("movies.csv", MOVIES_HEADER + "2,Heat (1995)\n", 3, "genres", "found 2"),
        ("movies.csv", MOVIES_HEADER, 3, "movieId", "movieId 2 is not in"),
    ],
)
def test_ml_latest_malformed_files(
    latest_dir: Path,
    write,
    name: str,
    text: str,
    line: int,
    column: str | None,
    fragment: str,
) -> None:
    path = write(name, text, folder=latest_dir)

    with pytest.raises(DataError) as info:
        load_ml_latest(latest_dir)

    err = info.value
    where = latest_dir / "ratings.csv" if fragment.startswith("movieId 2") else path
    assert (err.path, err.line, err.column) == (str(where), line, column)
    assert fragment in str(err)


def test_ml_latest_invalid_utf8_names_the_line(latest_dir: Path) -> None:
    path = latest_dir / "movies.csv"
    path.write_bytes(b"movieId,title,genres\n1,Toy Story (1995),Comedy\n2,Caf\xe9 (1995),Drama\n")

    with pytest.raises(DataError) as info:
        load_ml_latest(latest_dir)

    assert (info.value.path, info.value.line) == (str(path), 3)
    assert "UTF-8" in str(info.value)


def test_ml_latest_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        load_ml_latest(tmp_path / "nope")

    assert info.value.path == str(tmp_path / "nope")
    assert "ratings.csv, movies.csv" in str(info.value)
