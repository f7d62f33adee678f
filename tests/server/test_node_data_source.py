"""data-source = node: each node trains on its own store; the server reads the catalogue only."""

import hashlib
from pathlib import Path

import pytest
from flwr.app import Context, RecordDict

from fedrec.client.client_app import build_client_app
from fedrec.client.localstore import NodeStore
from fedrec.client.sealing import read_key_file, write_key_file
from fedrec.client.state import ClientStateStore
from fedrec.server.server_app import run_federation
from fedrec.shared.checkpoint import load_checkpoint
from fedrec.shared.config import resolve_config
from fedrec.shared.data import load as data_load
from fedrec.shared.data.catalog import catalog_from_ids
from fedrec.shared.data.catalog_file import catalog_json
from fedrec.shared.errors import ConfigError

ITEMS = [f"m{i}" for i in range(16)]


def _node(root: Path, name: str, users: dict[str, list[int]], catalog: Path) -> dict[str, str]:
    """A node with its own users' ratings, catalogue and state key; its node config."""
    store = NodeStore(root / name / "data")
    store.import_catalog(catalog)
    ratings = root / f"{name}.csv"
    rows = [f"{u},m{i},4,{t}" for u, items in users.items() for t, i in enumerate(items)]
    ratings.write_text("user,item,rating,timestamp\n" + "\n".join(rows) + "\n")
    store.import_csv(ratings)
    key = write_key_file(root / name / "state.key")
    return {
        "data-dir": str(store.data_dir),
        "state-dir": str(root / name / "state"),
        "state-key-file": key.source,
    }


def test_nodes_train_on_their_own_data_and_the_server_reads_no_ratings(
    tmp_path: Path, loopback_grid: type, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Prepare: a catalogue file for the server, two nodes with their own users, and a third
    # node that imported another catalogue.
    catalog = tmp_path / "catalog.json"
    catalog.write_text(catalog_json(catalog_from_ids(ITEMS)))
    other = tmp_path / "other.json"
    other.write_text(catalog_json(catalog_from_ids([*ITEMS, "m99"])))
    configs = [
        _node(tmp_path, "a", {"alice": [0, 1, 2, 3, 4], "ann": [5, 6, 7]}, catalog),
        _node(tmp_path, "b", {"bob": [8, 9, 10, 11]}, catalog),
        _node(tmp_path, "c", {"carl": [1, 2, 3]}, other),
    ]

    def no_ratings(*args: object) -> None:
        raise AssertionError("the server loaded a data set under data-source=node")

    monkeypatch.setattr(data_load, "load_dataset", no_ratings)
    monkeypatch.setattr(data_load, "load_split", no_ratings)
    settings = {
        "data-source": "node",
        "data-path": str(catalog),
        "embedding-dim": 4,
        "text-tower": "off",
        "num-rounds": 2,
        "output-dir": str(tmp_path / "runs"),
        "run-name": "own-data",
    }
    grid = loopback_grid(build_client_app(settings), 3)
    for nid, config in zip(grid.contexts, configs, strict=True):
        grid.contexts[nid] = Context(
            run_id=1, node_id=nid, node_config=config, state=RecordDict(), run_config={}
        )

    # Execute
    run_dir = run_federation(grid, resolve_config({}, settings))

    # Assert: two rounds from the two matching nodes; the third refused with the reason.
    ckpt = load_checkpoint(run_dir)
    assert ckpt.round == 2 and ckpt.tensors["item_factors"].shape == (len(ITEMS), 4)
    assert all(row["clients-ok"] == 2 for row in ckpt.manifest["history"])
    refusals = [r.error.reason for r in grid.replies if r.has_error()]
    assert refusals and all("node's catalogue is version" in r for r in refusals)
    # The run's catalogue is the file the server was given (the version nodes check).
    version = hashlib.sha256((run_dir / "catalog.json").read_bytes()).hexdigest()
    assert version == ckpt.manifest["catalog_sha256"]
    # Each node kept one private factor per own user, sealed in its state-dir, per run.
    run_id = (run_dir / "RUN_ID").read_text()
    for name, n_users in (("a", 2), ("b", 1)):
        key = read_key_file(tmp_path / name / "state.key")
        state = ClientStateStore(tmp_path / name / "state" / f"run-{run_id}", key).load()
        assert state is not None and state.user_factors.shape == (n_users, 4)
        assert state.rounds_trained == [1, 2] and state.epsilon > 0


def test_data_source_node_needs_the_catalogue_file() -> None:
    with pytest.raises(ConfigError, match="data-source=node needs data-path"):
        resolve_config({}, {"data-source": "node"})
