"""The private co-occurrence model: the release, the servable checkpoint, the rankings."""

from pathlib import Path

import numpy as np
import pytest

from fedrec.server.cooccurrence import collaborative_factors, item_tensors, release_clipping
from fedrec.server.secagg import SecureSumAccumulator, quantization_levels
from fedrec.server.serving import Recommender
from fedrec.shared.checkpoint import load_checkpoint
from fedrec.shared.config import CooccurrenceConfig, resolve_config
from fedrec.shared.data import load_split
from fedrec.shared.errors import ConfigError
from fedrec.shared.models.cooccurrence import contribution
from fedrec.shared.models.initial import USER_HEAD_B, USER_HEAD_W
from fedrec.shared.privacy.cooccurrence import plan_release
from fedrec.simulation.cooccurrence import released_sum, train_cooccurrence
from fedrec.simulation.evaluate import evaluate_run


def _clustered_csv(path: Path, users: int = 40) -> Path:
    """Two taste groups: even users like items 0-9, odd users items 10-19."""
    rng = np.random.default_rng(1)
    rows = ["user,item,rating,timestamp"]
    for u in range(users):
        base = 0 if u % 2 == 0 else 10
        for t, i in enumerate(rng.permutation(10)[:7] + base):
            rows.append(f"{u},{i},5,{t}")
    path.write_text("\n".join(rows) + "\n")
    return path


def _overrides(tmp_path: Path, **extra: object) -> dict[str, object]:
    return {
        "dataset": "generic",
        "data-path": str(_clustered_csv(tmp_path / "ratings.csv")),
        "text-tower": "off",
        "cooccurrence-rank": 4,
        "output-dir": str(tmp_path / "runs"),
        "run-name": "cooc",
        **extra,
    }


def test_the_secure_sum_accumulator_is_the_sum_up_to_quantization() -> None:
    rng = np.random.default_rng(0)
    vectors = [rng.normal(0, 0.3, 50) for _ in range(30)]
    acc = SecureSumAccumulator(2.0, quantization_levels(30))
    for v in vectors:
        acc.add({"x": v})
    np.testing.assert_allclose(acc.total()["x"], np.sum(vectors, axis=0), atol=1e-3)
    with pytest.raises(ValueError, match="tensors"):
        acc.add({"y": vectors[0]})


@pytest.mark.parametrize("placement", ["off", "central", "secagg"])
def test_the_released_sum_is_the_exact_sum_plus_the_planned_noise(
    tmp_path: Path, placement: str
) -> None:
    cfg = resolve_config({}, _overrides(tmp_path, **{"user-dp": placement}))
    _, split = load_split(cfg.data)
    exact = sum(contribution(items, split.n_items) for items in split.train_items_by_user())
    survivors = 28 if placement == "secagg" else None
    plan = plan_release(cfg.privacy, cfg.cooccurrence, split.n_users, survivors=survivors)
    residual = released_sum(cfg, split, plan) - exact
    if placement == "off":
        np.testing.assert_allclose(residual, 0.0, atol=1e-12)
        return
    # the noise on the sum: σ centrally; under secagg each of 40 clients adds σ/sqrt(28)
    expected = plan.noise_multiplier * (np.sqrt(40 / 28) if placement == "secagg" else 1.0)
    assert residual.std() == pytest.approx(expected, rel=0.15)


@pytest.mark.parametrize("placement", ["off", "secagg"])
def test_worker_processes_release_the_same_sum_as_one(tmp_path: Path, placement: str) -> None:
    settings = _overrides(tmp_path, **{"user-dp": placement, "reproducible-noise": True})
    cfg = resolve_config({}, settings)
    _, split = load_split(cfg.data)
    survivors = 28 if placement == "secagg" else None
    plan = plan_release(cfg.privacy, cfg.cooccurrence, split.n_users, survivors=survivors)
    seen: list[int] = []
    one = released_sum(cfg, split, plan, workers=1)
    two = released_sum(
        cfg, split, plan, workers=2, block_size=8, progress=lambda done, _n: seen.append(done)
    )
    # the same shares (seeded noise); SecAgg+'s stochastic rounding differs by a level
    levels = quantization_levels(split.n_users)
    step = 2 * release_clipping(plan) / levels if survivors else 0.0
    np.testing.assert_allclose(one, two, atol=split.n_users * step + 1e-9)
    assert seen[-1] == split.n_users and len(seen) == 5


def test_a_private_run_writes_a_servable_checkpoint_with_its_guarantee(tmp_path: Path) -> None:
    run = train_cooccurrence(_overrides(tmp_path, **{"user-dp": "secagg"}))
    ckpt = load_checkpoint(tmp_path / "runs" / "cooc")
    assert ckpt.manifest["kind"] == "cooccurrence" and ckpt.manifest["privacy"] is None
    report = ckpt.manifest["user_privacy"]
    assert report["unit"] == "user" and report["placement"] == "secagg"
    assert report["epsilon"] <= 4.0 and report["epsilon"] == run.plan.epsilon
    assert "user_factors" not in ckpt.tensors  # no user's vector leaves its device
    assert ckpt.tensors["item_factors"].shape == (20, 4)
    assert run.item_model_bytes == 4 * (20 * 4 + 20)  # what a device downloads, float32
    metrics = evaluate_run(tmp_path / "runs" / "cooc")["metrics"]
    assert metrics["ndcg@10_full"] == pytest.approx(run.test["ndcg@10_full"])


@pytest.mark.parametrize("item_model", ["spectral", "ease"])
def test_without_noise_the_model_learns_the_taste_groups(tmp_path: Path, item_model: str) -> None:
    run = train_cooccurrence(
        _overrides(tmp_path, **{"user-dp": "off", "cooccurrence-item-model": item_model})
    )
    # 12 candidates per user, 2 of them in the user's group: learning the groups puts the
    # test item in the top 2 (NDCG >= 0.63); random ranking gives about 0.35.
    assert run.test["ndcg@10_full"] >= 0.6
    ckpt = load_checkpoint(run.run_dir)
    rec = Recommender.from_checkpoint(ckpt)
    liked = [ckpt.catalog.raw_ids[i] for i in (0, 1, 2)]
    top = rec.cold_start(liked, k=5).items
    assert {int(i.id) for i in top} <= set(range(10)), [i.id for i in top]


def test_the_text_head_maps_item_texts_to_their_factors_and_their_content() -> None:
    rng = np.random.default_rng(2)
    n, dim = 60, 384
    emb = rng.normal(size=(n, dim))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    users = [rng.choice(n, 6, replace=False) for _ in range(80)]
    total = sum(contribution(u, n) for u in users)
    collab = collaborative_factors(total, n, CooccurrenceConfig(cooccurrence_rank=5))
    out = item_tensors(collab, item_embeddings=emb, content_weight=0.25)
    q = out["item_factors"]
    assert q.shape == (n, 5 + dim) and not out["item_bias"].any()
    # the content part is each item's centred, unit-norm embedding times sqrt(weight)
    np.testing.assert_allclose(np.linalg.norm(q[:, 5:], axis=1), 0.5, rtol=1e-5)
    mapped = emb @ out[USER_HEAD_W].T + out[USER_HEAD_B]
    cos = np.sum(mapped[:, 5:] * q[:, 5:], axis=1) / (
        np.linalg.norm(mapped[:, 5:], axis=1) * np.linalg.norm(q[:, 5:], axis=1)
    )
    assert cos.min() > 0.999  # free text lands on the content of the item it describes
    assert np.linalg.norm(q[:, :5], axis=0)[0] == pytest.approx(1.0)  # top eigenvalue -> 1


def test_a_second_release_into_the_same_run_is_refused(tmp_path: Path) -> None:
    train_cooccurrence(_overrides(tmp_path, **{"user-dp": "central"}))
    with pytest.raises(ConfigError, match="already holds a co-occurrence release"):
        train_cooccurrence(_overrides(tmp_path, **{"user-dp": "central"}))
    train_cooccurrence(_overrides(tmp_path, **{"user-dp": "central"}), save=False)  # no write
