"""A node's own store: its users' interactions and the catalogue, under its data-dir.

Issue 18: a SuperNode could only train on a partition of a data set every node held in full,
and the newest two interactions of each user were always held out, so feedback never trained.
"""

import hashlib
import sqlite3
import stat
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

from fedrec.client.dataview import load_client_data, node_client_data
from fedrec.client.localstore import Interaction, NodeStore
from fedrec.shared.checkpoint import save_catalog
from fedrec.shared.config import resolve_config
from fedrec.shared.data.catalog import catalog_from_ids
from fedrec.shared.data.catalog_file import catalog_json
from fedrec.shared.errors import ConfigError, DataError

ITEMS = [f"m{i}" for i in range(10)]


def catalog_file(path: Path, items: list[str] = ITEMS) -> Path:
    path.write_text(catalog_json(catalog_from_ids(items)))
    return path


@pytest.fixture
def store(tmp_path: Path) -> NodeStore:
    node = NodeStore(tmp_path / "data")
    node.import_catalog(catalog_file(tmp_path / "catalog.json"))
    return node


def _rows(store: NodeStore) -> list[tuple[object, ...]]:
    path = store.data_dir / "interactions.sqlite"
    if not path.exists():
        return []
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute(
            "SELECT user, item, rating, timestamp, kind, holdout FROM interactions "
            "ORDER BY user, item"
        ).fetchall()


def test_the_catalogue_version_is_the_runs_catalogue_hash(tmp_path: Path) -> None:
    store = NodeStore(tmp_path / "data")
    version = store.import_catalog(catalog_file(tmp_path / "catalog.json"))
    # The server writes the same canonical text into its run; the manifest hashes that file.
    save_catalog(tmp_path / "run", catalog_from_ids(ITEMS))
    assert version == hashlib.sha256((tmp_path / "run" / "catalog.json").read_bytes()).hexdigest()
    assert store.catalog().raw_ids == ITEMS
    assert stat.S_IMODE(store.data_dir.stat().st_mode) == 0o700


def test_rerating_updates_the_row_never_duplicates_it(store: NodeStore) -> None:
    store.record([Interaction("alice", "m1", "rating", 2.0, timestamp=10)])
    store.record([Interaction("alice", "m1", "rating", 5.0, timestamp=20)])
    assert _rows(store) == [("alice", "m1", 5.0, 20, "rating", 0)]
    assert stat.S_IMODE((store.data_dir / "interactions.sqlite").stat().st_mode) == 0o600


def test_a_weaker_kind_never_replaces_a_stronger_one(store: NodeStore) -> None:
    store.record([Interaction("alice", "m1", "rating", 4.0, timestamp=10)])
    store.record([Interaction("alice", "m1", "view", timestamp=30)])
    store.record([Interaction("alice", "m2", "view", timestamp=30)])
    store.record([Interaction("alice", "m2", "like", timestamp=40)])
    assert _rows(store) == [
        ("alice", "m1", 4.0, 10, "rating", 0),
        ("alice", "m2", None, 40, "like", 0),
    ]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (Interaction("alice", "nope", "like"), "'nope' is not in the node's catalogue"),
        (Interaction("alice", "m1", "rating"), "a rating needs a value"),
        (Interaction("alice", "m1", "like", 3.0), "a like or a view has none"),
        (Interaction("alice", "m1", "rating", float("nan")), "finite"),
        (Interaction("", "m1", "view"), "a user and an item id are needed"),
        (Interaction("alice", "m1", "star"), "kind must be one of"),
    ],
)
def test_bad_input_is_refused_with_the_reason(
    store: NodeStore, row: Interaction, message: str
) -> None:
    with pytest.raises(DataError, match=message):
        store.record([row])
    assert _rows(store) == []


def test_recording_before_a_catalogue_says_how_to_import_one(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="fedrec node catalog --data-dir"):
        NodeStore(tmp_path / "data").record([Interaction("alice", "m1", "like")])


def test_an_import_is_one_transaction(store: NodeStore, tmp_path: Path) -> None:
    store.record([Interaction("alice", "m1", "rating", 3.0, timestamp=1)])
    bad = tmp_path / "bad.csv"
    bad.write_text("user,item,rating,timestamp\nalice,m1,5,2\nbob,m2,4,3\nbob,zzz,4,4\n")
    with pytest.raises(DataError, match=r"bad\.csv, line 4: item 'zzz'"):
        store.import_csv(bad)
    assert _rows(store) == [("alice", "m1", 3.0, 1, "rating", 0)]  # nothing of it written


def test_a_failure_inside_the_write_rolls_all_of_it_back(
    store: NodeStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.record([Interaction("alice", "m1", "rating", 3.0, timestamp=1)])

    def dies(*args: object) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(NodeStore, "_hold_out_newest", staticmethod(dies))
    rows = [
        Interaction("alice", "m1", "rating", 5.0, timestamp=2),
        Interaction("bob", "m2", "like"),
    ]
    with pytest.raises(sqlite3.OperationalError):
        store.record(rows, holdout_newest=True)
    assert _rows(store) == [("alice", "m1", 3.0, 1, "rating", 0)]
    with closing(sqlite3.connect(store.data_dir / "interactions.sqlite")) as conn:
        assert conn.execute("SELECT user FROM users").fetchall() == [("alice",)]


def test_a_csv_with_the_wrong_header_or_values_is_refused(store: NodeStore, tmp_path: Path) -> None:
    header = tmp_path / "h.csv"
    header.write_text("userId,movieId\n1,2\n")
    with pytest.raises(DataError, match="line 1: header must name user and item"):
        store.import_csv(header)
    value = tmp_path / "v.csv"
    value.write_text("user,item,rating\nalice,m1,five\n")
    with pytest.raises(DataError, match="line 2: not a number"):
        store.import_csv(value)


# ------------------------------------------------------------------- the hold-out rule


def _history(tmp_path: Path) -> Path:
    path = tmp_path / "history.csv"
    path.write_text(
        "user,item,rating,timestamp\n"
        "alice,m0,4,100\nalice,m1,5,200\nalice,m2,3,300\n"  # newest: m2
        "bob,m3,4,100\nbob,m4,2,200\n"  # too few to hold one out
    )
    return path


def test_only_the_marked_history_is_held_out_and_feedback_always_trains(
    store: NodeStore, tmp_path: Path
) -> None:
    store.import_csv(_history(tmp_path), holdout_newest=True)
    cfg = resolve_config({}, {"text-tower": "off"})
    data = node_client_data(cfg, store)
    assert list(data.user_ids) == ["alice", "bob"]
    assert data.test_items.tolist() == [2, -1]
    alice = data.train_items[data.train_users == 0]
    assert sorted(alice.tolist()) == [0, 1] and 2 in data.seen[0] and 2 not in data.exclude[0]
    # Feedback recorded afterwards is the newest interaction, and it trains.
    store.record([Interaction("alice", "m7", "like", timestamp=999)])
    data = node_client_data(cfg, store)
    assert 7 in data.train_items[data.train_users == 0].tolist()
    assert data.test_items.tolist() == [2, -1]
    # Feedback on the held-out item itself makes it training data.
    store.record([Interaction("alice", "m2", "rating", 5.0, timestamp=1000)])
    data = node_client_data(cfg, store)
    assert 2 in data.train_items[data.train_users == 0].tolist()
    assert data.test_items.tolist() == [-1, -1]


def test_ratings_under_the_implicit_threshold_are_not_positives(
    store: NodeStore, tmp_path: Path
) -> None:
    store.import_csv(_history(tmp_path))
    data = node_client_data(resolve_config({}, {"implicit-threshold": 4.0}), store)
    bob = data.train_items[data.train_users == 1]
    assert bob.tolist() == [3]  # m4 (rated 2) is not a positive ...
    assert 4 in data.exclude[1]  # ... and is never recommended back either


def test_users_keep_their_index_when_others_are_added(store: NodeStore) -> None:
    store.record([Interaction("zoe", "m1", "like")])
    store.record([Interaction("adam", "m2", "like")])
    store.record([Interaction("zoe", "m3", "like")])
    assert store.rows().user_ids == ["zoe", "adam"]  # order of first appearance, not sorted


def test_a_node_reads_its_own_store_instead_of_a_partition(
    store: NodeStore, tmp_path: Path
) -> None:
    store.import_csv(_history(tmp_path))
    cfg = resolve_config({}, {"data-source": "node", "data-path": str(tmp_path / "catalog.json")})
    data = load_client_data(cfg, 0, 1, data_dir=str(store.data_dir))
    assert list(data.user_ids) == ["alice", "bob"] and data.n_items == len(ITEMS)
    assert np.array_equal(np.sort(data.train_items), [0, 1, 2, 3, 4])
    with pytest.raises(ConfigError, match="has no data-dir"):
        load_client_data(cfg, 0, 1)


def test_a_catalogue_missing_recorded_items_is_not_imported(
    store: NodeStore, tmp_path: Path
) -> None:
    store.record([Interaction("alice", "m9", "like")])
    smaller = catalog_file(tmp_path / "smaller.json", ITEMS[:5])
    with pytest.raises(DataError, match="'m9', are not in this catalogue"):
        store.import_catalog(smaller)
    assert store.catalog().raw_ids == ITEMS
    bigger = catalog_file(tmp_path / "bigger.json", [*ITEMS, "m10"])
    store.import_catalog(bigger)
    assert len(store.catalog()) == 11
