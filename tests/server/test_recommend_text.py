"""The serving model over a checkpoint trained with LoRA adapters (text-tower = lora)."""

from pathlib import Path

import numpy as np
import pytest
import torch

from fedrec.server.recommend import FOLD_IN_WEIGHT, Recommender, trained_with_dp
from fedrec.shared.checkpoint import load_checkpoint, save_catalog, save_checkpoint
from fedrec.shared.config import FedRecConfig
from fedrec.shared.data.dataset import ItemCatalog
from fedrec.shared.models.encoder import lora_state
from fedrec.shared.models.factory import init_global
from fedrec.shared.models.hybrid import LORA_PREFIX


def test_lora_checkpoint_serves_text_through_its_adapters(tmp_path: Path) -> None:
    cfg = FedRecConfig().replace(
        **{
            "text-tower": "lora",
            "lora-rank": 2,
            "lora-layers": 1,
            "embedding-dim": 4,
            "text-cache-dir": str(tmp_path / "cache"),
        }
    )
    texts = [f"Film {i}. Genres: {'Action' if i % 2 else 'Comedy'}." for i in range(6)]
    catalog = ItemCatalog(
        raw_ids=[str(i) for i in range(6)],
        titles=[f"Film {i}" for i in range(6)],
        genres=[["Action"] if i % 2 else ["Comedy"] for i in range(6)],
        texts=texts,
        years=[None] * 6,
    )
    tensors = init_global(cfg, 6)
    # Trained adapters: B is no longer zero, so the adapted encoder differs from the frozen one.
    for key in tensors:
        if key.startswith(LORA_PREFIX) and "lora_B" in key:
            tensors[key] = (
                np.random.default_rng(0).normal(0, 0.5, tensors[key].shape).astype(np.float32)
            )
    rec = _served(tmp_path / "run", catalog, tensors, cfg)
    assert rec.towers is not None and rec.towers.user_encoder is not rec.towers.item_encoder
    for name, p in lora_state(rec.towers.user_encoder).items():
        np.testing.assert_array_equal(p.detach().numpy(), tensors[LORA_PREFIX + name])
    text = "loud action films"
    adapted, _ = rec.towers.encode_user([text])
    frozen = rec.towers.encode_items([text])
    assert not np.allclose(adapted, frozen, atol=1e-4)
    result = rec.cold_start(text=text, k=3)
    assert len(result.items) == 3 and all(i.because for i in result.items)
    assert torch.is_grad_enabled()  # serving does not leave autograd switched off


def _numbered_catalog(n: int) -> ItemCatalog:
    """Items "0".."n-1" with no genres, their ids as titles and texts."""
    names = [str(i) for i in range(n)]
    return ItemCatalog(
        raw_ids=names, titles=names, genres=[[] for _ in names], texts=names, years=[None] * n
    )


def test_fold_in_fits_a_user_to_the_liked_items_deterministically() -> None:
    rng = np.random.default_rng(0)
    q = rng.normal(0, 1, (40, 4)).astype(np.float32)
    catalog = _numbered_catalog(40)
    rec = Recommender(q, np.zeros(40, np.float32), catalog)
    liked = np.array([3, 7, 11])
    u = rec.fold_in(liked)
    np.testing.assert_array_equal(u, rec.fold_in(liked))
    scores = rec.q @ u
    # The liked items end up ranked above the typical item.
    assert np.mean(scores[liked]) > np.percentile(scores, 75)
    # A strong pull towards the start keeps the answer there.
    start = np.ones(4, np.float32)
    np.testing.assert_allclose(rec.fold_in(liked, start, reg=1e6, lr=1e-7), start, atol=1e-3)


def test_a_dp_trained_model_serves_new_users_without_fold_in(tmp_path: Path) -> None:
    # Fold-in fits a few liked items' exact rows; under DP they carry noise (coldstart-dp.md).
    rng = np.random.default_rng(1)
    q = rng.normal(0, 1, (30, 4)).astype(np.float32)
    catalog = _numbered_catalog(30)
    liked = np.array([2, 5])
    plain = Recommender(q, np.zeros(30, np.float32), catalog)
    noised = Recommender(q, np.zeros(30, np.float32), catalog, fold_in=False)
    _, u_plain, _ = plain.user_scores(liked)
    _, u_dp, _ = noised.user_scores(liked)
    np.testing.assert_allclose(u_dp, q[liked].mean(0), rtol=1e-6)  # the start vector
    assert not np.allclose(u_plain, u_dp)
    # From a checkpoint, the manifest decides: any DP guarantee switches fold-in off.
    for privacy, user_privacy, expected in (
        (None, None, True),
        ({"unit": "record", "epsilon": 7.6}, None, False),
        (None, {"unit": "user", "epsilon": 8.0}, False),
    ):
        run = tmp_path / f"run-{expected}-{privacy is None}"
        save_catalog(run, catalog)
        save_checkpoint(
            run,
            round=1,
            tensors={"item_factors": q, "item_bias": np.zeros(30, np.float32)},
            run_name="r",
            kind="federated",
            config={},
            metrics={},
            history=[],
            privacy=privacy,
            user_privacy=user_privacy,
        )
        rec = Recommender.from_checkpoint(load_checkpoint(run))
        assert rec.fold_in_enabled is expected
        assert trained_with_dp(load_checkpoint(run).manifest) is (not expected)


def test_a_checkpoint_without_an_item_head_serves_text_and_places_new_items(
    tmp_path: Path,
) -> None:
    cfg = FedRecConfig().replace(
        **{"item-head": False, "embedding-dim": 4, "text-cache-dir": str(tmp_path / "cache")}
    )
    catalog = _numbered_catalog(6)
    tensors = init_global(cfg, 6)
    assert "text.item_head.weight" not in tensors and "text.user_head.weight" in tensors
    rec = _served(tmp_path / "run", catalog, tensors, cfg)
    assert rec.has_text
    # Items are their factors: no text part is added to the trained table.
    np.testing.assert_allclose(rec.q, tensors["item_factors"], rtol=1e-6)
    assert len(rec.cold_start(text="a funny film", k=3).items) == 3
    item = rec.add_item("new", "A new film", ["Comedy"])  # small catalogue: no map, no head
    assert rec.text_map is None and item.index == 6
    np.testing.assert_array_equal(rec.q[6], 0.0)


def _served(
    run: Path, catalog: ItemCatalog, tensors: dict[str, np.ndarray], cfg: FedRecConfig
) -> Recommender:
    """The serving model of a one-round, non-DP checkpoint of ``tensors`` saved in ``run``."""
    save_catalog(run, catalog)
    save_checkpoint(
        run,
        round=1,
        tensors=tensors,
        run_name=run.name,
        kind="federated",
        config=cfg.to_run_config(),
        metrics={},
        history=[{"round": 1}],
        privacy=None,
    )
    return Recommender.from_checkpoint(load_checkpoint(run))


def test_the_fold_in_counts_at_its_weight_against_the_item_bias() -> None:
    # A folded-in vector fit to a few items swamps the bias (the learned popularity) unless
    # weighted down: docs/benchmarks/coldstart.md, the fold-in weight table.
    rng = np.random.default_rng(2)
    q = rng.normal(0, 1, (30, 4)).astype(np.float32)
    b = rng.normal(0, 1, 30).astype(np.float32)
    catalog = _numbered_catalog(30)
    liked = np.array([1, 4, 9])
    full = Recommender(q, b, catalog, fold_in_weight=1.0)
    half = Recommender(q, b, catalog, fold_in_weight=0.5)
    none = Recommender(q, b, catalog, fold_in_weight=0.0)
    u = full.fold_in(liked, start=full.liked_vector(liked))
    np.testing.assert_allclose(full.user_scores(liked)[1], u, rtol=1e-6)
    np.testing.assert_allclose(half.user_scores(liked)[1], 0.5 * u, rtol=1e-6)
    np.testing.assert_array_equal(none.user_scores(liked)[0], b)  # the bias alone
    assert Recommender(q, b, catalog).fold_in_weight == FOLD_IN_WEIGHT
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="fold_in_weight"):
            Recommender(q, b, catalog, fold_in_weight=bad)
