"""The ε–utility benchmark: noise calibration, the plain loop's central user-level DP, reports."""

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from fedrec.cli.main import app
from fedrec.client import task
from fedrec.client.state import ClientStateStore
from fedrec.server.user_dp import CentralNoise
from fedrec.shared.config import FedRecConfig, resolve_config
from fedrec.shared.data import load_split
from fedrec.shared.models.initial import init_global
from fedrec.shared.privacy import (
    SeededRandom,
    account,
    calibrate_record,
    clip_update,
    default_delta,
    epsilon_of,
    record_plans,
    update_norm,
)
from fedrec.shared.training import LocalResult
from fedrec.simulation.plain_loop import PlainLoop
from fedrec.simulations.bench_privacy import (
    goal_check,
    random_ranking_ndcg,
    run_privacy_benchmark,
)
from fedrec.simulations.report import render
from fedrec.simulations.reports.privacy import markdown


def _ratings(path: Path, counts: list[int], n_items: int = 40) -> Path:
    """User u has counts[u] interactions (two of them held out: validation and test)."""
    rng = np.random.default_rng(1)
    rows = ["user,item,rating,timestamp"]
    for u, n in enumerate(counts):
        for t, i in enumerate(rng.choice(n_items, n, replace=False)):
            rows.append(f"{u},{i},{int(rng.integers(1, 6))},{1000 + t}")
    path.write_text("\n".join(rows) + "\n")
    return path


def _cfg(data: Path, **extra: object) -> FedRecConfig:
    return resolve_config(
        {},
        {
            "dataset": "generic",
            "data-path": str(data),
            "embedding-dim": 4,
            "personalize-epochs": 1,
            **extra,
        },
    )


def test_record_level_sigma_hits_the_target_and_the_clients_accountants_agree(
    tmp_path: Path,
) -> None:
    # 12 to 30 interactions: every client runs the same public DP-SGD plan (q, steps).
    counts = [12, 15, 19, 22, 26, 30]
    cfg = _cfg(_ratings(tmp_path / "r.csv", counts), **{"dp-enabled": True, "dp-sample-rate": 0.1})
    _, split = load_split(cfg.data)
    n_records = [int(np.sum(split.train.users == u)) for u in range(split.n_users)]
    plans = record_plans(n_records, cfg.train, cfg.privacy)
    assert len(plans) == 1 and sum(plans.values()) == split.n_users
    rounds, target, delta = 2, 3.0, cfg.privacy.dp_delta
    cal = calibrate_record(target, plans, rounds=rounds, delta=delta)
    assert 0.97 * target <= cal.planned_epsilon <= target
    worst = max(epsilon_of([(cal.sigma, q, s * rounds)], delta) for q, s in plans)
    assert worst == pytest.approx(cal.planned_epsilon)

    # Train the run with that sigma: the clients' own accountants end at the planned epsilon.
    run_cfg = cfg.replace(**{"dp-noise-multiplier": cal.sigma})
    fed = PlainLoop(run_cfg, split.n_users, init_global(run_cfg, split.n_items), tmp_path / "c")
    for rnd in range(1, rounds + 1):
        fed.train_round(list(range(split.n_users)), rnd)
    reached = [
        ClientStateStore(tmp_path / "c" / f"partition-{p}").load().epsilon  # type: ignore[union-attr]
        for p in range(split.n_users)
    ]
    assert max(reached) == pytest.approx(cal.planned_epsilon, rel=1e-6)
    assert max(reached) <= target


def _fake_local_train(scales: dict[int, float]) -> Any:
    """A local_train stand-in: client p moves every item factor by p's scale (known norms)."""

    def fake(cfg: Any, data: Any, shared: Any, store: Any, **_: Any) -> tuple[dict, LocalResult]:
        pid = int(store.directory.name.split("-")[-1])
        out = {k: np.asarray(v, np.float32).copy() for k, v in shared.items()}
        out["item_factors"] = out["item_factors"] + np.float32(scales[pid])
        return out, LocalResult(0.0, 0, 0, 1.0, [], None)

    return fake


def test_the_plain_loop_central_user_dp_clips_each_update_and_noises_the_sum(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _ratings(tmp_path / "r.csv", [6, 6, 6, 6], n_items=20)
    scales = {0: 0.01, 1: 0.5, 2: 1.0, 3: 2.0}  # norms 0.09 to 17.9 with 80 item factors
    monkeypatch.setattr(task, "local_train", _fake_local_train(scales))
    clip, lr = 1.0, 1.0

    def federation(sigma: float, seed: int) -> PlainLoop:
        cfg = _cfg(
            data,
            **{
                "dp-enabled": False,
                "user-dp": "central",
                "user-clip": clip,
                "user-noise-multiplier": sigma,
                "server-learning-rate": lr,
            },
        )
        shared = init_global(cfg, 20)
        noise = CentralNoise(clip, sigma, rng=SeededRandom(seed))
        return PlainLoop(cfg, 4, shared, tmp_path / f"s{sigma}", central_noise=noise)

    def expected_step(fed: PlainLoop, parts: list[int]) -> dict[str, np.ndarray]:
        deltas = []
        for p in parts:
            delta = {k: np.zeros_like(v) for k, v in fed.global_tensors.items()}
            delta["item_factors"] += np.float32(scales[p])
            deltas.append(clip_update(delta, clip)[0])
        return {k: lr * sum(d[k] for d in deltas) / len(parts) for k in fed.global_tensors}

    # Next to no noise: the step is the mean of the clipped updates over the clients sampled.
    fed = federation(1e-9, 0)
    before = {k: v.copy() for k, v in fed.global_tensors.items()}
    want = expected_step(fed, [0, 1, 2, 3])
    fed.train_round([0, 1, 2, 3], 1)
    for k in before:
        np.testing.assert_allclose(fed.global_tensors[k] - before[k], want[k], atol=1e-5)
    assert fed.last_norms == pytest.approx([np.sqrt(80) * s for s in scales.values()], rel=1e-5)
    assert update_norm({k: fed.global_tensors[k] - before[k] for k in before}) <= clip + 1e-5

    # sigma = 2: the noise has std sigma * C / K on every coordinate of every tensor.
    fed = federation(2.0, 1)
    before = {k: v.copy() for k, v in fed.global_tensors.items()}
    want = expected_step(fed, [0, 1, 2, 3])
    fed.train_round([0, 1, 2, 3], 1)
    residual = np.concatenate(
        [(fed.global_tensors[k] - before[k] - want[k]).ravel() for k in sorted(before)]
    )
    assert np.all(residual != 0)
    assert 0.7 * 0.5 < residual.std() < 1.3 * 0.5

    # The run's user-level account: q = sampled / clients per round, delta = 1/N^1.1.
    fed.train_round([1, 3], 2)
    report = fed.user_privacy()
    assert report is not None and report["placement"] == "central"
    assert report["delta"] == pytest.approx(default_delta(4))
    history = [(2.0, 1.0, 1), (2.0, 0.5, 1)]
    assert report["epsilon"] == pytest.approx(account(history, default_delta(4), "rdp").epsilon)
    assert report["rounds"] == 2


def test_random_ranking_level_counts_each_users_candidates(tmp_path: Path) -> None:
    # 6 interactions per user: 4 training items and the validation item are excluded, so
    # the test item ranks uniformly among the other n_items - 5 candidates.
    cfg = _cfg(_ratings(tmp_path / "r.csv", [6] * 8, n_items=40))
    _, split = load_split(cfg.data)
    candidates = split.n_items - 5
    assert candidates > 10
    gains = 1.0 / np.log2(np.arange(2, 12))
    assert random_ranking_ndcg(split) == pytest.approx(gains.sum() / candidates)


def _point(target: float, ndcg: float, sigma: float, *, user: bool) -> dict[str, Any]:
    point: dict[str, Any] = {
        "calibration": {"target": target, "sigma": sigma, "planned_epsilon": target},
        "metrics": {"ndcg@10_full": ndcg, "hr@10_full": 2 * ndcg, "n_users": 943.0},
        "ndcg_standard_error": 0.005,
        "paired_se_vs_no_dp": 0.003,
        "rounds": [{"round": 1, "clipped_fraction": 0.5}] if user else [{"round": 1}],
    }
    if user:
        point["user_privacy"] = {"epsilon": target * 0.995}
        point["noise_std_on_average"] = sigma * 2.0 / 943
    else:
        point["record_epsilon_max"] = target * 0.99
    return point


def _result(user_ndcg_at_8: float) -> dict[str, Any]:
    return {
        "benchmark": "privacy",
        "complete": True,
        "date": "2026-01-01T00:00:00+00:00",
        "dataset": "ml-100k",
        "users": 943,
        "items": 1682,
        "rounds": 5,
        "clients_per_round": 943,
        "scenario": "ml100k-nodp",
        "settings": {"fraction-train": 1.0, "server-learning-rate": 100.0, "text-tower": "off"},
        "evaluation": "personalised",
        "loop": "plain loop",
        "machine": {"cpus": 2, "torch_threads": 1, "platform": "linux", "torch": "2"},
        "popularity": {"ndcg@10_full": 0.0424},
        "no_dp": {
            "metrics": {"ndcg@10_full": 0.05, "hr@10_full": 0.1, "n_users": 943.0},
            "ndcg_standard_error": 0.005,
        },
        "record": {
            "max_grad_norm": 1.0,
            "dp_sample_rate": 0.1,
            "delta": 1e-5,
            "plans": [{"sample_rate": 0.1, "steps_per_round": 20, "clients": 943}],
            "points": [_point(1.0, 0.02, 3.0, user=False), _point(8.0, 0.03, 0.8, user=False)],
        },
        "user": {
            "placement": "central",
            "sample_rate": 1.0,
            "delta": default_delta(943),
            "accountant": "rdp",
            "clip": 2.4,
            "clip_source": "median",
            "points": [
                _point(1.0, 0.04, 5.0, user=True),
                _point(8.0, user_ndcg_at_8, 1.2, user=True),
            ],
            "scale": [],
        },
        "total_s": 600.0,
    }


def test_the_goal_check_says_whether_the_goal_is_met(tmp_path: Path) -> None:
    met = _result(0.046)
    met["goal"] = goal_check(met)
    assert met["goal"]["met"] is True and met["goal"]["ratio"] == pytest.approx(0.92)
    missed = _result(0.03)
    missed["goal"] = goal_check(missed)
    assert missed["goal"]["met"] is False
    # The goal's verdict, and no popularity caveat while the threshold is above popularity.
    assert "**not met**" in markdown(missed, "privacy")
    assert "does not show personalisation" not in markdown(missed, "privacy")
    render(missed, tmp_path, "privacy")
    assert (tmp_path / "privacy.png").stat().st_size > 1000
    assert (tmp_path / "privacy.md").read_text() == markdown(missed, "privacy")


def test_a_tiny_benchmark_runs_end_to_end_and_renders_from_its_json(tmp_path: Path) -> None:
    data = _ratings(tmp_path / "r.csv", [8, 10, 12, 9, 11, 14])
    out = tmp_path / "out"
    result = run_privacy_benchmark(
        output_dir=out,
        runs_dir=tmp_path / "runs",
        rounds=1,
        epsilons=(1.0, 8.0),
        levels=("record", "user", "local", "secagg"),
        scale=(10,),
        goal_repeats=2,
        user_clip_scale=0.5,
        notes=["settings chosen by hand"],
        overrides={
            "dataset": "generic",
            "data-path": str(data),
            "embedding-dim": 4,
            "personalize-epochs": 1,
        },
    )
    assert result["complete"] and result["goal"]["met"] in (True, False)
    assert result["settings"]["text-tower"] == "off"
    assert result["settings"]["client-optimizer"] == "adam"
    for level in ("record", "user", "local", "secagg"):
        targets = sorted(p["calibration"]["target"] for p in result[level]["points"])
        assert targets == [1.0, 8.0]
    for level, placement in (("user", "central"), ("local", "local"), ("secagg", "secagg")):
        for p in result[level]["points"]:
            assert p["user_privacy"]["epsilon"] <= p["calibration"]["target"] + 1e-9
            assert p["user_privacy"]["clip"] == result["user"]["clip"] > 0
            assert p["user_privacy"]["placement"] == placement
    # The same sigma for the same epsilon; local puts sqrt(K) times central's noise on the
    # average, secagg sqrt(K / t) times (t = round(0.7 x 6) = 4).
    central = {p["calibration"]["target"]: p for p in result["user"]["points"]}
    for level, factor in (("local", np.sqrt(6)), ("secagg", np.sqrt(6 / 4))):
        for p in result[level]["points"]:
            twin = central[p["calibration"]["target"]]
            assert p["calibration"]["sigma"] == twin["calibration"]["sigma"]
            assert p["noise_std_on_average"] == pytest.approx(factor * twin["noise_std_on_average"])
    # Record-level points train with the product's DP-SGD defaults, not the no-DP tuning.
    assert result["record"]["settings"] == {
        "client-optimizer": "sgd",
        "learning-rate": 0.1,
        "dp-sample-rate": 1.0,
    }
    for p in result["record"]["points"]:
        assert 0.95 * p["calibration"]["target"] <= p["record_epsilon_max"]
        assert p["record_epsilon_max"] <= p["calibration"]["target"] + 1e-9
    assert result["user"]["scale"][0]["scale"]["users"] == 60
    medians = [r["update_norm_median"] for r in result["no_dp"]["rounds"]]
    assert result["user"]["clip"] == pytest.approx(0.5 * float(np.median(medians)))
    assert result["user"]["clip_source"].startswith("0.5 x the median")
    # The goal point ran twice with fresh noise; its metrics are the mean of the runs.
    goal = next(p for p in result["user"]["points"] if p["calibration"]["target"] == 8.0)
    assert len(goal["ndcg_runs"]) == len(goal["runs"]) == 2
    assert goal["metrics"]["ndcg@10_full"] == pytest.approx(np.mean(goal["ndcg_runs"]))
    assert result["goal"]["ndcg"] == pytest.approx(np.mean(goal["ndcg_runs"]))
    saved = json.loads((out / "privacy.json").read_text())
    assert saved["complete"] and "ranks_full" not in saved["no_dp"]
    (out / "privacy.md").unlink()
    run = CliRunner().invoke(app, ["bench", "privacy", "--render-only", "--output-dir", str(out)])
    assert run.exit_code == 0, run.output
    text = (out / "privacy.md").read_text()
    assert "ε–utility curve" in text and "mean of 2 runs" in text
    assert "- settings chosen by hand" in text
    assert "User-level DP, local" in text and "SecAgg+ noise shares" in text
    assert "client-optimizer sgd, learning-rate 0.1" in text
    with pytest.raises(ValueError, match="user-clip-scale"):
        run_privacy_benchmark(output_dir=out, runs_dir=tmp_path, user_clip_scale=0.0)
