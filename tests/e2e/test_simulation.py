"""A real (small) Flower simulation: Ray backend, ClientApps with Opacus, checkpoints, resume."""

from pathlib import Path

import numpy as np
import pytest

from fedrec.client.state import ClientStateStore
from fedrec.shared.checkpoint import latest_round, load_checkpoint
from fedrec.simulation.evaluate import evaluate_run
from fedrec.simulation.runner import simulate

pytestmark = pytest.mark.slow

N_USERS, N_ITEMS = 8, 30


def _write_tiny_dataset(folder: Path) -> Path:
    """8 users with 12 interactions each over 30 items; every user has a test item."""
    rng = np.random.default_rng(0)
    lines = ["user,item,rating,timestamp"]
    for u in range(N_USERS):
        items = rng.choice(N_ITEMS, 12, replace=False)
        for t, i in enumerate(items):
            lines.append(f"{u},{i},{int(rng.integers(1, 6))},{1000 + t}")
    ratings = folder / "ratings.csv"
    ratings.write_text("\n".join(lines) + "\n")
    items_csv = folder / "items.csv"
    items_csv.write_text(
        "item,title,genres\n"
        + "".join(f"{i},Item {i} ({1990 + i}),Drama|Comedy\n" for i in range(N_ITEMS))
    )
    return ratings


def _settings(tmp_path: Path, **extra: object) -> dict[str, object]:
    data = _write_tiny_dataset(tmp_path)
    return {
        "dataset": "generic",
        "data-path": str(data),
        "num-rounds": 2,
        "fraction-train": 0.5,
        "fraction-evaluate": 0.5,
        "embedding-dim": 8,
        "batch-size": 4,
        "personalize-epochs": 1,
        "output-dir": str(tmp_path / "runs"),
        "run-name": "tiny",
        **extra,
    }


def test_simulation_trains_checkpoints_and_resumes(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    run_dir = simulate(settings, num_supernodes=N_USERS)

    assert latest_round(run_dir) == 2
    ckpt = load_checkpoint(run_dir)
    manifest = ckpt.manifest
    assert manifest["round"] == 2 and manifest["kind"] == "federated"
    assert ckpt.tensors["item_factors"].shape == (N_ITEMS, 8)
    assert np.all(np.isfinite(ckpt.tensors["item_factors"]))
    # Privacy is stated with its unit and a real epsilon from the clients' accountants.
    privacy = manifest["privacy"]
    assert privacy["unit"] == "record" and privacy["epsilon"] > 0 and privacy["delta"] == 1e-5
    # Under DP no statistic of the records left a client: no loss, step count or timing,
    # and no federated evaluation (off by default under DP), and the manifest says so.
    last = manifest["history"][-1]
    assert last["clients-ok"] >= 2
    assert not any(k.startswith("eval/") or k == "train-loss" for k in last)
    assert "No other statistic computed from a client's records leaves it" in privacy["covers"]
    # Each sampled client kept its private state (and only on its side of the fence).
    states = sorted((run_dir / "clients").glob("partition-*/state.sealed"))
    assert states, "no client state was written"
    one = ClientStateStore(states[0].parent).load()
    assert one is not None and one.epsilon > 0 and one.rounds_trained

    # Resume: two more rounds continue from round 2, no round repeated or lost.
    rerun = simulate({**settings, "num-rounds": 4}, num_supernodes=N_USERS)
    assert rerun == run_dir
    history = load_checkpoint(run_dir).manifest["history"]
    assert [row["round"] for row in history] == [1, 2, 3, 4]

    # The pooled evaluation of the run uses the clients' private factors.
    report = evaluate_run(run_dir, personalize_epochs=1)
    assert report["metrics"]["n_users"] == N_USERS
    assert 0.0 <= report["metrics"]["coverage@10"] <= 1.0


def test_simulation_without_dp_makes_no_privacy_claim(tmp_path: Path) -> None:
    run_dir = simulate(
        _settings(tmp_path, **{"dp-enabled": False, "num-rounds": 1}), num_supernodes=4
    )
    assert load_checkpoint(run_dir).manifest["privacy"] is None


def test_failing_clients_robust_aggregation_and_fedadam_resume(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path,
        **{
            "dp-enabled": False,
            "num-rounds": 2,
            "fraction-train": 1.0,
            "failure-rate": 0.4,
            "strategy": "fedadam",
            "server-learning-rate": 0.01,
            "aggregation": "trimmed-mean",
            "trim-fraction": 0.2,
            # Messages go out at most 3 at a time (server/messaging.py), failures included.
            "max-in-flight": 3,
        },
    )
    run_dir = simulate(settings, num_supernodes=N_USERS)
    history = load_checkpoint(run_dir).manifest["history"]
    assert [row["round"] for row in history] == [1, 2]
    # Some clients failed (seeded draws at rate 0.4 over 16 trainings), every round still
    # completed, and the metrics say who took part.
    assert sum(row["clients-failed"] for row in history) > 0
    for row in history:
        assert row["clients-sampled"] == N_USERS  # fraction 1.0 means every client
        assert row["clients-ok"] + row["clients-failed"] + row["clients-rejected"] == N_USERS
        assert row["clients-ok"] >= 1
    # FedAdam's moments are checkpointed and carried into a resumed run.
    first = load_checkpoint(run_dir).server_state
    shared = set(load_checkpoint(run_dir).tensors)
    assert "text.user_head.weight" in shared  # the default model has text towers
    assert set(first) == {f"{m}.{name}" for m in ("m", "v") for name in shared}
    simulate({**settings, "num-rounds": 3}, num_supernodes=N_USERS)
    resumed = load_checkpoint(run_dir)
    assert resumed.round == 3
    assert not np.array_equal(resumed.server_state["v.item_factors"], first["v.item_factors"])


def test_clients_stop_at_their_privacy_budget(tmp_path: Path) -> None:
    # ~10 training records per user, q = 0.1, 2 epochs: one round costs eps ~4.45 and two
    # ~5.43 at sigma 1, delta 1e-5, so a budget of 5 allows exactly one round.
    settings = _settings(
        tmp_path,
        **{
            "num-rounds": 2,
            "fraction-train": 1.0,
            "dp-epsilon-budget": 5.0,
            "dp-noise-multiplier": 1.0,
            "dp-sample-rate": 0.1,
        },
    )
    run_dir = simulate(settings, num_supernodes=N_USERS)
    ckpt = load_checkpoint(run_dir)
    first, second = ckpt.manifest["history"]
    assert first["clients-ok"] == N_USERS and first.get("clients-out-of-budget", 0) == 0
    assert second["clients-out-of-budget"] == N_USERS and second["clients-ok"] == 0
    assert ckpt.manifest["privacy"]["epsilon"] <= 5.0
    for state in (run_dir / "clients").glob("partition-*/state.sealed"):
        assert ClientStateStore(state.parent).load().rounds_trained == [1]  # type: ignore[union-attr]


def test_stragglers_past_the_round_timeout_are_left_out_and_counted(tmp_path: Path) -> None:
    # Half the clients sleep far longer than the round waits: the round still completes
    # (checkpointed) with whoever replied in time, and the history says how many did not.
    # (Which clients answer in time depends on actor scheduling, so only counts are fixed.)
    settings = _settings(
        tmp_path,
        **{
            "dp-enabled": False,
            "num-rounds": 1,
            "fraction-train": 1.0,
            "fraction-evaluate": 0.0,
            "final-evaluate-all": False,
            "text-tower": "off",
            "straggler-rate": 0.5,
            "straggler-seconds": 60.0,
            "round-timeout": 15.0,
        },
    )
    run_dir = simulate(settings, num_supernodes=N_USERS)
    (row,) = load_checkpoint(run_dir).manifest["history"]
    assert row["clients-sampled"] == N_USERS
    assert row["clients-timed-out"] >= 1
    assert row["clients-ok"] + row["clients-timed-out"] + row["clients-failed"] == N_USERS
