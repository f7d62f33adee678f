"""On-device ranking from the global item model and the node's private user side."""

from pathlib import Path

import numpy as np
import pytest

from fedrec.client.localstore import Interaction, NodeStore
from fedrec.client.ranking import load_global_items, rank_items, recommend_on_device
from fedrec.shared.checkpoint import run_id, save_catalog, save_checkpoint
from fedrec.shared.config import FedRecConfig, resolve_config
from fedrec.shared.data.catalog import catalog_from_ids
from fedrec.shared.data.catalog_file import catalog_json
from fedrec.shared.errors import ConfigError, DataError
from fedrec.shared.models.cooccurrence import ITEM_PRIOR, user_vector
from fedrec.shared.models.initial import ITEM_HEAD_W, USER_HEAD_W

ITEMS = [f"m{i}" for i in range(6)]
# Item i points in direction i % 3 (checkerboard-like): a user along axis a likes items a, a+3.
FACTORS = np.array([np.eye(3)[i % 3] * (1.0 + 0.1 * i) for i in range(6)], np.float32)


def _model(
    tmp_path: Path, *, kind: str = "federated", cfg: FedRecConfig | None = None, **extra: np.ndarray
) -> Path:
    run_dir = tmp_path / "runs" / kind
    save_catalog(run_dir, catalog_from_ids(ITEMS))
    run_id(run_dir)
    tensors = {"item_factors": FACTORS, "item_bias": np.zeros(6, np.float32), **extra}
    save_checkpoint(
        run_dir,
        round=1,
        tensors=tensors,
        run_name=kind,
        kind=kind,
        config=(cfg or FedRecConfig()).to_run_config(),
        metrics={},
        history=[],
        privacy=None,
    )
    return run_dir


def _store(tmp_path: Path, items: list[str], catalog: list[str] = ITEMS) -> NodeStore:
    (tmp_path / "catalog.json").write_text(catalog_json(catalog_from_ids(catalog)))
    store = NodeStore(tmp_path / "data")
    store.import_catalog(tmp_path / "catalog.json")
    store.record([Interaction("me", item, "like", timestamp=t) for t, item in enumerate(items)])
    return store


def test_the_private_factor_ranks_and_the_users_items_are_never_recommended_back(
    tmp_path: Path,
) -> None:
    model = load_global_items(_model(tmp_path))
    assert model.kind == "mf" and model.run_id == (tmp_path / "runs/federated/RUN_ID").read_text()
    store = _store(tmp_path, ["m0"])
    # The private factor points along axis 2: items m5 then m2 (m5's factor is longer).
    private = np.array([[0.0, 0.0, 1.0]], np.float32)
    got = recommend_on_device(store, model, "me", private_factors=private, k=2)
    assert [r.item for r in got] == ["m5", "m2"] and got[0].score == pytest.approx(1.5)
    # Without a private factor: the mean of the user's own items (axis 0), m0 excluded.
    got = recommend_on_device(store, model, "me", private_factors=None, k=1)
    assert [r.item for r in got] == ["m3"]


def test_a_cooccurrence_user_is_the_faded_mean_of_its_items(tmp_path: Path) -> None:
    cfg = resolve_config({}, {"cooccurrence-rank": 2, "cooccurrence-content-fade": 1.0})
    model = load_global_items(_model(tmp_path, kind="cooccurrence", cfg=cfg))
    assert model.kind == "cooccurrence" and model.content_split == (2, 1.0)
    store = _store(tmp_path, ["m1", "m2"])
    got = recommend_on_device(store, model, "me", private_factors=None, k=4)
    want = FACTORS @ user_vector(FACTORS, np.array([1, 2]), rank=2, fade=1.0)
    want[[1, 2]] = -np.inf
    assert [r.item for r in got] == [ITEMS[i] for i in np.argsort(-want, kind="stable")[:4]]


def test_a_model_of_another_catalogue_or_with_an_item_head_is_refused(tmp_path: Path) -> None:
    model = load_global_items(_model(tmp_path))
    store = _store(tmp_path, ["m0"], catalog=[*ITEMS, "m6"])
    with pytest.raises(ConfigError, match="node's catalogue is version"):
        recommend_on_device(store, model, "me", private_factors=None)
    towers = _model(tmp_path, kind="towers", **{ITEM_HEAD_W: np.zeros((4, 384), np.float32)})
    with pytest.raises(ConfigError, match="has an item head"):
        load_global_items(towers)


def test_a_default_cooccurrence_model_with_its_text_parts_ranks_on_the_device(
    tmp_path: Path,
) -> None:
    # the user head and item popularity serve free text at the service, not needed here
    extra = {USER_HEAD_W: np.zeros((3, 384), np.float32), ITEM_PRIOR: np.ones(6, np.float32)}
    cfg = resolve_config({}, {"cooccurrence-rank": 2})
    model = load_global_items(_model(tmp_path, kind="cooccurrence", cfg=cfg, **extra))
    got = recommend_on_device(_store(tmp_path, ["m1"]), model, "me", private_factors=None, k=2)
    assert len(got) == 2 and "m1" not in [r.item for r in got]


def test_an_unknown_user_is_refused(tmp_path: Path) -> None:
    model = load_global_items(_model(tmp_path))
    with pytest.raises(DataError, match="no interactions of user 'you'"):
        recommend_on_device(_store(tmp_path, ["m0"]), model, "you", private_factors=None)


def test_rank_items_puts_the_best_first_and_never_returns_excluded_items(tmp_path: Path) -> None:
    model = load_global_items(_model(tmp_path))
    top = rank_items(model, np.ones(3, np.float32), exclude=np.array([5, 4]), k=10)
    assert [i for i, _ in top] == [3, 2, 1, 0]
