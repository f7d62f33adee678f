"""The attack harness: AUC, the attacks on real local updates, defenses, the report."""

import inspect
import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from fedrec.cli.bench import bench_app
from fedrec.shared.config import FedRecConfig, PrivacyConfig, TrainConfig
from fedrec.shared.evaluation import auc
from fedrec.shared.models.mf import MatrixFactorization
from fedrec.shared.privacy import SeededRandom
from fedrec.shared.training import train_local
from fedrec.simulations.attack import (
    MEMBERSHIP_ATTACKS,
    PRIOR,
    RECORD_SIGMAS,
    TEXT_HEAD_ATTACK,
    Truth,
    local_user_dp,
    membership_aucs,
    membership_scores,
    rating_aucs,
    rating_scores,
    run_attack_benchmark,
    secure_sum,
    user_direction,
)
from fedrec.simulations.bench_federation import write_synthetic
from fedrec.simulations.report import save
from fedrec.simulations.reports.attack import markdown

N_ITEMS, DIM = 300, 8


def _client(seed: int = 0, n_pos: int = 25) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    items = rng.choice(N_ITEMS, n_pos, replace=False)
    ratings = rng.integers(1, 6, n_pos).astype(np.float64)
    return items, ratings


def _update(items: np.ndarray, privacy: PrivacyConfig, seed: int = 0) -> dict[str, np.ndarray]:
    """One client's real local update (the project's train_local) as a delta."""
    model = MatrixFactorization(1, N_ITEMS, DIM)
    before = model.get_global()
    train_local(
        model,
        np.zeros(len(items), dtype=np.int64),
        items.astype(np.int64),
        train=TrainConfig(embedding_dim=DIM, learning_rate=0.05),
        privacy=privacy,
        seed=seed,
    )
    after = model.get_global()
    return {k: after[k] - before[k] for k in before}


def _truth(items: np.ndarray, ratings: np.ndarray) -> Truth:
    order = np.argsort(items)
    return Truth(items[order], ratings[order], np.zeros(0, dtype=np.int64), N_ITEMS)


NO_DP = PrivacyConfig(dp_enabled=False)


def test_membership_attack_finds_the_items_of_an_undefended_update() -> None:
    items, ratings = _client()
    aucs = membership_aucs(membership_scores(_update(items, NO_DP)), _truth(items, ratings))
    assert aucs["direction"] > 0.95
    assert aucs["bias-signed"] > 0.95
    # Drawn negatives move too, so row norms alone are weaker but still far from chance.
    assert aucs["factor-row-norm"] > 0.7


def test_heavy_noise_takes_the_attack_to_chance() -> None:
    items, ratings = _client(1)
    truth = _truth(items, ratings)
    delta = _update(items, NO_DP, seed=1)
    rng = SeededRandom(0)
    clip = 1.0
    light = membership_aucs(membership_scores(local_user_dp(delta, clip, 1e-4, rng)), truth)
    heavy = membership_aucs(membership_scores(local_user_dp(delta, clip, 1.0, rng)), truth)
    assert light["direction"] > 0.95
    assert max(heavy.values()) < 0.65
    dp = _update(items, PrivacyConfig(dp_noise_multiplier=20.0, dp_sample_rate=0.2), seed=1)
    assert max(membership_aucs(membership_scores(dp), truth).values()) < 0.7


def test_secure_sum_is_the_sum_and_dilutes_one_client() -> None:
    deltas, truths = [], []
    for seed in range(12):
        items, ratings = _client(seed)
        deltas.append(_update(items, NO_DP, seed=seed))
        truths.append(_truth(items, ratings))
    total = secure_sum(deltas)
    np.testing.assert_allclose(
        total["item_bias"], np.sum([d["item_bias"] for d in deltas], axis=0), atol=1e-7
    )
    alone = membership_aucs(membership_scores(deltas[0]), truths[0])["bias-signed"]
    mixed = membership_aucs(membership_scores(total), truths[0])["bias-signed"]
    assert alone > 0.95 and 0.5 < mixed < alone


def test_user_direction_and_rating_scores_on_a_synthetic_update() -> None:
    p = np.array([0.3, -0.2, 0.1])
    q = np.zeros((6, 3))
    b = np.zeros(6)
    q[[0, 1]], b[[0, 1]] = 0.2 * p, 0.2  # the client's items, pushed up along (p, 1)
    q[2], b[2] = -0.05 * p, -0.05  # a drawn negative, pushed down
    delta = {"item_factors": q.astype(np.float32), "item_bias": b.astype(np.float32)}
    v = user_direction(delta)
    assert v[-1] > 0
    np.testing.assert_allclose(abs(v @ np.append(p, 1.0)), np.linalg.norm(np.append(p, 1.0)))
    truth = Truth(np.array([0, 1]), np.array([5.0, 2.0]), np.zeros(0, dtype=np.int64), 6)
    assert membership_aucs(membership_scores(delta), truth)["direction"] == 1.0
    shared = {"item_factors": np.eye(6, 3, dtype=np.float32), "item_bias": np.arange(6.0)[::-1]}
    rating = rating_aucs(rating_scores(delta, shared), truth)
    assert set(rating) == {"update-magnitude", "taste", PRIOR}
    assert rating[PRIOR] == 1.0  # item 0 (rated 5) has the larger global bias


def _summary(mean: float, se: float = 0.01, n: int = 3) -> dict:
    return {"mean": mean, "se": se, "n": n}


def _result() -> dict:
    def row(defense: str, setting: str, eps: str, best: float, control: dict | None) -> dict:
        gain = (
            {k: _summary(best - v["mean"], 0.002) for k, v in control.items()} if control else None
        )
        return {
            "round": 1,
            "defense": defense,
            "setting": setting,
            "epsilon": None,
            "epsilon_text": eps,
            "membership_auc": {
                "factor-row-norm": _summary(0.8),
                "bias-abs": _summary(0.7),
                "bias-signed": _summary(best),
                "direction": _summary(0.9),
                PRIOR: _summary(0.5, 0.0),
            },
            "rating_auc": {
                "update-magnitude": _summary(0.51),
                "taste": _summary(0.49),
                PRIOR: _summary(0.5, 0.0),
            },
            "membership_tpr_at_low_fpr": {"bias-signed": _summary(0.42, 0.03)},
            "low_fpr": 0.01,
            "membership_auc_without_client": control,
            "membership_auc_gain": gain,
            "strongest_membership_attack": "bias-signed",
            "strongest_rating_attack": "update-magnitude",
            "clients": 3,
            "rating_clients": 3,
            "seed": 7,
            "wall_s": 1.25,
        }

    return {
        "benchmark": "attack",
        "date": "2026-01-01T00:00:00+00:00",
        "dataset": "ml-100k",
        "threat_model": "honest-but-curious server",
        "attacked_rounds": [1],
        "federation": {
            "scenario": "ml100k-nodp",
            "dp_scenario": "ml100k-dp",
            "settings": FedRecConfig().to_run_config(),
            "clients": 943,
            "seconds": 0.0,
        },
        "targets": 3,
        "pool": 10,
        "seed": 7,
        "clip": {"1": {"clip": 1.0, "median_update_norm": 5.0, "clipped_share": 0.97}},
        "high_rating": 4.0,
        "machine": {"cpus": 2, "platform": "linux"},
        "rows": [
            row("none", "scenario x", "∞ (no DP)", 0.95, None),
            row("SecAgg+", "sum of K=10 updates", "no DP", 0.81, {"bias-signed": _summary(0.7)}),
        ],
        "wall_s": 12.0,
    }


def test_saved_result_round_trips_and_renders(tmp_path: Path) -> None:
    save(_result(), tmp_path, "attack", kind="attack")
    assert json.loads((tmp_path / "attack.json").read_text()) == _result()
    assert (tmp_path / "attack.md").read_text() == markdown(_result(), "attack")


def test_command_renders_the_report_from_its_json(tmp_path: Path) -> None:
    (tmp_path / "attack.json").write_text(json.dumps(_result()))
    out = CliRunner().invoke(bench_app, ["attack", "--render-only", "--output-dir", str(tmp_path)])
    assert out.exit_code == 0, out.output
    assert (tmp_path / "attack.md").read_text() == markdown(_result(), "attack")
    missing = CliRunner().invoke(
        bench_app, ["attack", "--render-only", "--output-dir", str(tmp_path / "none")]
    )
    assert missing.exit_code != 0


def test_benchmark_runs_every_defense_on_a_tiny_federation(tmp_path: Path) -> None:
    data = write_synthetic(tmp_path / "data", n_users=24, n_items=40, per_user=10, seed=0)
    overrides = {"dataset": "generic", "data-path": str(data), "embedding-dim": 4}
    if "text-tower" in FedRecConfig().to_run_config():
        overrides["text-tower"] = "off"  # no text encoder in a unit test
    result = run_attack_benchmark(
        overrides=overrides,
        output_dir=tmp_path / "out",
        runs_dir=tmp_path / "runs",
        targets=4,
        attack_rounds=(1, 2),
        record_sigmas=(1.0,),
        user_sigmas=(1.0,),
        secagg_sizes=(3,),
        seed=0,
    )
    defenses = [(r["round"], r["defense"]) for r in result["rows"]]
    for rnd in (1, 2):
        assert defenses.count((rnd, "none")) == 2
        assert (rnd, "record-level DP-SGD") in defenses
        assert (rnd, "user-level DP, local") in defenses
        assert defenses.count((rnd, "SecAgg+")) == 2
        assert (rnd, "SecAgg+ with distributed user-level DP") in defenses
    dp = next(r for r in result["rows"] if r["defense"] == "record-level DP-SGD")
    assert dp["unit"] == "record" and dp["epsilon"] > 0 and dp["epsilon_run"] > dp["epsilon"]
    assert all(r["clients"] == 4 for r in result["rows"])
    for r in result["rows"]:
        tprs = r["membership_tpr_at_low_fpr"]
        assert set(tprs) >= set(MEMBERSHIP_ATTACKS) and r["low_fpr"] == 0.01
        assert all(0.0 <= t["mean"] <= 1.0 for t in tprs.values())
    secagg = [r for r in result["rows"] if r["defense"].startswith("SecAgg+")]
    assert all(r["membership_auc_gain"] and r["k"] == 3 for r in secagg)
    assert json.loads((tmp_path / "out" / "attack.json").read_text())["rows"]
    assert "SecAgg+" in (tmp_path / "out" / "attack.md").read_text()
    assert not list((tmp_path / "runs").glob("attack-*"))  # scratch states are removed


def test_default_record_sigmas_reach_about_8_4_and_1_and_the_cli_agrees() -> None:
    from fedrec.shared.privacy import dp_plan, epsilon_of

    cfg = FedRecConfig()
    _, q, steps = dp_plan(cfg.train, cfg.privacy)  # the product's plan, the same for every user
    eps = [epsilon_of([(s, q, 5 * steps)], cfg.privacy.dp_delta) for s in RECORD_SIGMAS]
    for got, want in zip(eps, (8.0, 4.0, 1.0), strict=True):
        assert 0.85 * want <= got <= 1.05 * want, eps
    option = next(p for p in bench_app.registered_commands if p.name == "attack")
    default = inspect.signature(option.callback).parameters["record_sigmas"].default
    assert [float(x) for x in default.split(",")] == list(RECORD_SIGMAS)


def test_the_user_head_of_a_hybrid_update_points_at_the_liked_items_texts() -> None:
    from fedrec.shared.models.initial import USER_HEAD_W

    rng = np.random.default_rng(3)
    n_items, dim = 60, 8
    text = rng.normal(size=(n_items, 384))
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    liked = np.array([3, 17, 29, 41, 55])
    # The align loss's gradient: one outer product g_i e_iᵀ per positive sample.
    head = sum(np.outer(rng.normal(size=dim), text[i]) for i in liked)
    delta = {
        "item_factors": np.zeros((n_items, dim), np.float32),
        "item_bias": np.zeros(n_items, np.float32),
        USER_HEAD_W: head.astype(np.float32),
    }
    scores = membership_scores(delta, item_text=text)
    labels = np.isin(np.arange(n_items), liked)
    assert auc(scores[TEXT_HEAD_ATTACK], labels) > 0.95
    # Not without the public texts, nor for an MF update (no head).
    assert TEXT_HEAD_ATTACK not in membership_scores(delta)
    mf = {k: v for k, v in delta.items() if k != USER_HEAD_W}
    assert TEXT_HEAD_ATTACK not in membership_scores(mf, item_text=text)


def test_hybrid_updates_are_also_attacked_through_the_user_head(tmp_path: Path) -> None:
    data = write_synthetic(tmp_path / "data", n_users=12, n_items=30, per_user=10, seed=1)
    result = run_attack_benchmark(
        overrides={
            "dataset": "generic",
            "data-path": str(data),
            "embedding-dim": 4,
            "text-tower": "heads",
        },
        output_dir=tmp_path / "out",
        runs_dir=tmp_path / "runs",
        targets=3,
        attack_rounds=(1,),
        record_sigmas=(2.1,),
        user_sigmas=(),
        secagg_sizes=(),
        seed=0,
    )
    for row in result["rows"]:
        assert TEXT_HEAD_ATTACK in row["membership_auc"], row["defense"]
        assert 0.0 <= row["membership_auc"][TEXT_HEAD_ATTACK]["mean"] <= 1.0
