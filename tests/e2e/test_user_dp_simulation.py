"""User-level DP in a real (small) Flower simulation: Ray backend, SecAgg+ and local noise."""

from pathlib import Path

import numpy as np
import pytest

from fedrec.client.state import ClientStateStore
from fedrec.shared.checkpoint import load_checkpoint
from fedrec.simulation.runner import simulate

from .helpers import write_tiny_ratings

pytestmark = pytest.mark.slow

N_USERS, N_ITEMS = 6, 30


def _settings(tmp_path: Path, placement: str, **extra: object) -> dict[str, object]:
    data = write_tiny_ratings(
        tmp_path / "ratings.csv", n_users=N_USERS, n_items=N_ITEMS, per_user=10
    )
    return {
        "dataset": "generic",
        "data-path": str(data),
        "num-rounds": 2,
        "embedding-dim": 8,
        "personalize-epochs": 1,
        "fraction-evaluate": 0.0,
        "final-evaluate-all": False,
        "user-dp": placement,
        "user-delta": 1e-3,
        "output-dir": str(tmp_path / "runs"),
        "run-name": placement,
        **extra,
    }


def _ledgers(run_dir: Path) -> list[dict[str, object]]:
    """Each client's ledger, read through its sealed state."""
    states = [ClientStateStore(p).load() for p in (run_dir / "clients").glob("partition-*")]
    return [s.to_dict() for s in states if s is not None]


def test_secagg_simulation_with_record_level_dp_too(tmp_path: Path) -> None:
    run_dir = simulate(_settings(tmp_path, "secagg"), num_supernodes=N_USERS)
    ckpt = load_checkpoint(run_dir)
    assert ckpt.round == 2 and np.all(np.isfinite(ckpt.tensors["item_factors"]))
    for row in ckpt.manifest["history"]:
        # Every sampled client's masked update went into the sum; the server saw no update.
        assert row["clients-sampled"] == N_USERS and row["secagg-survivors"] == N_USERS
        assert row["clients-ok"] == N_USERS and "update-norm-median" not in row
    user, record = ckpt.manifest["user_privacy"], ckpt.manifest["privacy"]
    assert user["unit"] == "user" and user["placement"] == "secagg" and user["rounds"] == 2
    assert user["sample_rate"] == 1.0 and user["delta"] == 1e-3 and user["epsilon"] > 0
    assert record["unit"] == "record" and record["epsilon"] > 0  # DP-SGD ran as well
    for ledger in _ledgers(run_dir):
        assert ledger["user_ledger"] == {"secagg": [[1.0, 1.0, 2]]}
        assert ledger["epsilon"] > 0  # the record-level entry, its own mechanism


def test_local_noise_simulation_samples_half_the_clients(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path, "local", **{"fraction-train": 0.5, "dp-enabled": False, "num-rounds": 3}
    )
    run_dir = simulate(settings, num_supernodes=N_USERS)
    ckpt = load_checkpoint(run_dir)
    user = ckpt.manifest["user_privacy"]
    assert user["placement"] == "local" and user["rounds"] == 3
    assert user["sample_rate"] == 0.5  # 3 of 6 clients per round: amplification by sampling
    assert user["history"] == [[1.0, 0.5, 3]]
    assert ckpt.manifest["privacy"] is None
    assert [row["clients-ok"] for row in ckpt.manifest["history"]] == [3, 3, 3]
    ledgers = _ledgers(run_dir)
    rounds = sum(len(ledger["rounds_trained"]) for ledger in ledgers)  # type: ignore[arg-type]
    assert rounds == 9
    # Against the server each client's own ledger counts the rounds it took part in.
    most = max(ledger["user_epsilon"]["local"] for ledger in ledgers)  # type: ignore[index]
    assert user["epsilon_against_server"] == pytest.approx(most)


def test_cooccurrence_release_on_flowers_simulation_engine(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path,
        "secagg",
        model="cooccurrence",
        **{"text-tower": "off", "cooccurrence-rank": 4, "cooccurrence-chunk-size": 200},
    )
    run_dir = simulate(settings, num_supernodes=N_USERS)
    ckpt = load_checkpoint(run_dir)
    assert ckpt.manifest["kind"] == "cooccurrence"
    assert ckpt.manifest["metrics"]["fewest-clients-per-slice"] == N_USERS
    n = ckpt.tensors["item_factors"].shape[0]
    assert ckpt.manifest["history"][0]["slices"] == -(-(n * (n + 1) // 2) // 200) > 1
    report = ckpt.manifest["user_privacy"]
    assert report["placement"] == "secagg" and report["delta"] == 1e-3
    assert np.all(np.isfinite(ckpt.tensors["item_factors"]))
