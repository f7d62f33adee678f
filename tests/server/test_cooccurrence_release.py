"""The co-occurrence release over Flower's messages (and SecAgg+), on a loopback grid."""

from pathlib import Path

import numpy as np
import pytest

from fedrec.client import client_app as client_app_module
from fedrec.client.cooccurrence import ReleaseRefused, record_release
from fedrec.client.state import ClientStateStore
from fedrec.server.secagg import STAGES
from fedrec.server.server_app import run_federation
from fedrec.shared.checkpoint import load_checkpoint
from fedrec.shared.config import resolve_config
from fedrec.shared.data import load_split
from fedrec.shared.models.cooccurrence import ease_factors
from fedrec.simulation.cooccurrence import train_cooccurrence

USERS = 12


def _settings(tmp_path: Path, placement: str, **extra: object) -> dict[str, object]:
    rng = np.random.default_rng(4)
    rows = ["user,item,rating,timestamp"]
    for u in range(USERS):
        base = 0 if u % 2 == 0 else 8
        rows += [f"{u},{base + i},5,{t}" for t, i in enumerate(rng.permutation(8)[:6])]
    data = tmp_path / "ratings.csv"
    data.write_text("\n".join(rows) + "\n")
    return {
        "dataset": "generic",
        "data-path": str(data),
        "model": "cooccurrence",
        "text-tower": "off",
        "cooccurrence-rank": 3,
        "cooccurrence-chunk-size": 50,  # 136 entries: three slices
        "user-dp": placement,
        "min-available-nodes": USERS,
        "output-dir": str(tmp_path / "runs"),
        "run-name": placement,
        **extra,
    }


def _flower(tmp_path: Path, loopback_grid: type, settings: dict[str, object]) -> Path:
    app = client_app_module.build_client_app(settings)
    grid = loopback_grid(app, USERS, node_config=True)
    return run_federation(grid, resolve_config({}, settings))


def test_without_noise_flower_and_the_driver_build_the_same_model(
    tmp_path: Path, loopback_grid: type
) -> None:
    settings = _settings(tmp_path, "off")
    run_dir = _flower(tmp_path, loopback_grid, settings)
    over_flower = load_checkpoint(run_dir)
    driver = train_cooccurrence({**settings, "run-name": "driver"})
    assert over_flower.manifest["kind"] == "cooccurrence"
    assert over_flower.manifest["user_privacy"] is None  # no noise, no claim
    np.testing.assert_allclose(
        over_flower.tensors["item_factors"], driver.tensors["item_factors"], atol=1e-5
    )


def test_without_noise_the_ease_model_is_the_centralized_one(
    tmp_path: Path, loopback_grid: type
) -> None:
    settings = _settings(
        tmp_path, "off", **{"cooccurrence-item-model": "ease", "cooccurrence-l2": 0.5}
    )
    over_flower = load_checkpoint(_flower(tmp_path, loopback_grid, settings))
    cfg = resolve_config({}, settings)
    _, split = load_split(cfg.data)
    # the statistic a centralized system would compute from every user's training items
    gram = np.zeros((split.n_items, split.n_items))
    for items in split.train_items_by_user():
        x = np.zeros(split.n_items)
        x[np.unique(items)] = 1.0
        gram += np.outer(x, x) / x.sum()
    expected = ease_factors(gram, 0.5, cfg.cooccurrence.cooccurrence_dropout)
    q = over_flower.tensors["item_factors"].astype(np.float64)
    assert q.shape == (split.n_items, split.n_items)  # full rank, no text part (towers off)
    np.testing.assert_allclose(q @ q.T, expected @ expected.T.astype(np.float64), atol=1e-4)


def test_under_secagg_the_server_gets_only_a_noised_sum(
    tmp_path: Path, loopback_grid: type
) -> None:
    settings = _settings(tmp_path, "secagg", **{"cooccurrence-epsilon": 2.0})
    run_dir = _flower(tmp_path, loopback_grid, settings)
    ckpt = load_checkpoint(run_dir)
    report = ckpt.manifest["user_privacy"]
    assert report["placement"] == "secagg" and report["epsilon"] <= 2.0
    assert report["unit"] == "user" and report["secagg_survivors"] >= 2
    assert ckpt.manifest["metrics"]["fewest-clients-per-slice"] == USERS
    # Each slice is one SecAgg+ round whose four stages are timed and weighed.
    costs = ckpt.manifest["history"][0]["slice_costs"]
    assert [c["entries"] for c in costs] == [50, 50, 36] and len(costs) == 3
    for cost in costs:
        assert [s["stage"] for s in cost["stages"]] == list(STAGES)
        assert all(s["replies"] == s["messages"] == USERS for s in cost["stages"])
        assert cost["seconds"] >= sum(s["seconds"] for s in cost["stages"]) > 0
        masked = cost["stages"][2]  # the masked vectors: int64 per entry, plus np.save's header
        per_client = masked["received_bytes"] / USERS
        assert 8 * cost["entries"] < per_client <= masked["largest_reply_bytes"]
        assert masked["largest_reply_bytes"] < 8 * cost["entries"] + 512


def test_a_survivor_floor_sizes_the_release_for_every_client_on_a_sparse_graph(
    tmp_path: Path, loopback_grid: type
) -> None:
    # A ring of 3 shares: SecAgg+'s own threshold is 2 survivors, so without a floor each
    # share carries sigma / sqrt(2); with every client required to survive, sigma / sqrt(N).
    ring = {"cooccurrence-epsilon": 2.0, "secagg-num-shares": 3.0}
    runs = {}
    for floor in (0.0, 1.0):
        (tmp_path / str(floor)).mkdir()
        settings = _settings(
            tmp_path / str(floor), "secagg", **ring, **{"secagg-min-survivors": floor}
        )
        runs[floor] = load_checkpoint(_flower(tmp_path / str(floor), loopback_grid, settings))
    sparse, floored = (runs[f].manifest["user_privacy"] for f in (0.0, 1.0))
    assert sparse["secagg_survivors"] == 2 and floored["secagg_survivors"] == USERS
    assert floored["noise_multiplier"] == sparse["noise_multiplier"]  # the same sigma on the sum
    assert floored["epsilon"] == sparse["epsilon"] <= 2.0


def test_a_client_never_releases_the_same_entries_twice(tmp_path: Path) -> None:
    record_release(ClientStateStore(tmp_path / "c"), 0, 50)
    record_release(ClientStateStore(tmp_path / "c"), 50, 100)
    with pytest.raises(ReleaseRefused, match="already released"):
        record_release(ClientStateStore(tmp_path / "c"), 40, 60)
    with pytest.raises(ReleaseRefused):
        record_release(ClientStateStore(tmp_path / "c"), 0, 50)


def test_a_second_release_in_the_same_run_is_refused_by_every_client(
    tmp_path: Path, loopback_grid: type
) -> None:
    settings = _settings(tmp_path, "central")
    app = client_app_module.build_client_app(settings)
    grid = loopback_grid(app, USERS, node_config=True)
    run_dir = run_federation(grid, resolve_config({}, settings))
    latest = (run_dir / "LATEST").read_text()
    assert run_federation(grid, resolve_config({}, settings)) == run_dir  # done: not re-asked
    assert (run_dir / "LATEST").read_text() == latest
    # A server that lost its checkpoint (same run identity) asks again: every client refuses.
    (run_dir / "LATEST").unlink()
    with pytest.raises(RuntimeError, match="incomplete"):
        run_federation(grid, resolve_config({}, settings))
    refused = [r for r in grid.replies[-USERS:] if r.has_error()]
    assert len(refused) == USERS and "already released" in refused[0].error.reason
