"""A new user's vector: fold-in on the liked items, none under DP, weighted against the bias."""

from pathlib import Path

import numpy as np
import pytest

from fedrec.server.serving import FOLD_IN_WEIGHT, Recommender, trained_with_dp
from fedrec.shared.checkpoint import load_checkpoint, save_catalog, save_checkpoint
from tests.server.serving.conftest import numbered_catalog


def test_fold_in_fits_a_user_to_the_liked_items_deterministically() -> None:
    rng = np.random.default_rng(0)
    q = rng.normal(0, 1, (40, 4)).astype(np.float32)
    catalog = numbered_catalog(40)
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
    catalog = numbered_catalog(30)
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


def test_the_fold_in_counts_at_its_weight_against_the_item_bias() -> None:
    # A folded-in vector fit to a few items swamps the bias (the learned popularity) unless
    # weighted down: docs/benchmarks/coldstart.md, the fold-in weight table.
    rng = np.random.default_rng(2)
    q = rng.normal(0, 1, (30, 4)).astype(np.float32)
    b = rng.normal(0, 1, 30).astype(np.float32)
    catalog = numbered_catalog(30)
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
