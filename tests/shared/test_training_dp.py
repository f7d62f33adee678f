"""The DP client step: Opacus really clips, noises and accounts, across rounds."""

import numpy as np
import pytest
import torch

from fedrec.shared.config import PrivacyConfig, TrainConfig
from fedrec.shared.models.mf import MatrixFactorization
from fedrec.shared.privacy import dp_plan, epsilon_of
from fedrec.shared.training import train_local

N_ITEMS = 50


def _model(seed: int = 0) -> MatrixFactorization:
    torch.manual_seed(seed)
    return MatrixFactorization(1, N_ITEMS, 8)


def _data(n: int = 40) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros(n, dtype=np.int64), np.arange(n, dtype=np.int64) % 10


def test_dp_step_accounts_and_touches_every_row() -> None:
    model = _model()
    before = model.get_global()["item_factors"]
    users, items = _data()
    res = train_local(
        model,
        users,
        items,
        train=TrainConfig(local_epochs=1),
        privacy=PrivacyConfig(dp_noise_multiplier=1.0, dp_sample_rate=0.2),
        seed=1,
    )
    # Poisson sampling at q = 0.2 (expected batch 8 of 40) for one epoch of 5 steps.
    assert res.accountant_history == [(1.0, 0.2, 5)]
    assert res.sample_rate == pytest.approx(0.2)
    assert res.epsilon == pytest.approx(epsilon_of(res.accountant_history, 1e-5))
    assert res.epsilon > 0
    # Noise lands on every row, not only on the 10 items this user touched: the update
    # does not reveal which items were interacted with.
    changed = np.abs(model.get_global()["item_factors"] - before).sum(axis=1) > 0
    assert changed.all()


def test_without_dp_only_touched_and_sampled_rows_move() -> None:
    model = _model()
    before = model.get_global()["item_factors"]
    users, items = _data()
    res = train_local(
        model,
        users,
        items,
        train=TrainConfig(batch_size=8, num_negatives=1),
        privacy=PrivacyConfig(dp_enabled=False),
        seed=1,
    )
    assert res.epsilon is None and res.accountant_history == []
    changed = np.abs(model.get_global()["item_factors"] - before).sum(axis=1) > 0
    assert not changed.all()


def test_accountant_history_carries_over_rounds() -> None:
    users, items = _data()
    cfg = TrainConfig(local_epochs=1)
    dp = PrivacyConfig(dp_noise_multiplier=1.0, dp_sample_rate=0.2)
    first = train_local(_model(), users, items, train=cfg, privacy=dp, seed=1)
    second = train_local(
        _model(),
        users,
        items,
        train=cfg,
        privacy=dp,
        accountant_history=first.accountant_history,
        seed=2,
    )
    assert second.accountant_history == [(1.0, 0.2, 10)]
    assert second.epsilon > first.epsilon


def test_user_factor_is_trained_under_dp_too() -> None:
    """Clipping bounds the whole per-sample gradient, user factor included.

    With a tiny clip bound and no noise-free path, a huge learning rate still moves the
    user factor by at most lr * (clip + noise) per step; an unclipped update would explode.
    """
    model = _model()
    u0 = model.get_users().copy()
    users, items = _data(8)
    train_local(
        model,
        users,
        items,
        train=TrainConfig(learning_rate=1.0),
        privacy=PrivacyConfig(dp_noise_multiplier=1e-6, dp_max_grad_norm=1e-3, dp_sample_rate=1.0),
        seed=3,
    )
    # Sample rate 1: one step over all 8 records, noise ~0; the step is at most lr * clip.
    assert np.linalg.norm(model.get_users() - u0) <= 1.0 * 1e-3 * 1.01 * 2


def test_dp_fails_loudly_without_data() -> None:
    with pytest.raises(ValueError, match="no training interactions"):
        train_local(
            _model(),
            np.zeros(0, dtype=np.int64),
            np.zeros(0, dtype=np.int64),
            train=TrainConfig(),
            privacy=PrivacyConfig(dp_noise_multiplier=1.0, dp_sample_rate=0.1),
        )


def test_epsilon_does_not_depend_on_how_many_records_a_user_has() -> None:
    """One sampling rate for all clients: a user with 20 records spends what one with 200 does."""
    eps = []
    for n in (20, 200):
        users, items = _data(n)
        res = train_local(
            _model(),
            users,
            items,
            train=TrainConfig(local_epochs=1),
            privacy=PrivacyConfig(dp_noise_multiplier=1.0, dp_sample_rate=0.1),
            seed=0,
        )
        assert res.accountant_history == [(1.0, 0.1, 10)]
        eps.append(res.epsilon)
    assert eps[0] == pytest.approx(eps[1])


@pytest.mark.parametrize("dp", [False, True])
def test_fedprox_keeps_shared_params_near_the_global_model(dp: bool) -> None:
    users, items = _data()

    def drift(mu: float) -> float:
        model = _model()
        before = model.get_global()["item_factors"]
        train_local(
            model,
            users,
            items,
            train=TrainConfig(local_epochs=3, learning_rate=0.1, proximal_mu=mu),
            privacy=PrivacyConfig(dp_enabled=dp, dp_sample_rate=0.2),
            seed=3,
        )
        return float(np.linalg.norm(model.get_global()["item_factors"] - before))

    assert drift(5.0) < 0.5 * drift(0.0)


def test_learning_rate_schedule_decays_per_round() -> None:
    train = TrainConfig(learning_rate=0.1, lr_decay=0.5)
    assert [train.lr_at(r) for r in (1, 2, 3)] == pytest.approx([0.1, 0.05, 0.025])
    model_a, model_b = _model(), _model()
    users, items = _data()
    for model, lr in ((model_a, 0.1), (model_b, 0.001)):
        train_local(
            model,
            users,
            items,
            train=TrainConfig(),
            privacy=PrivacyConfig(dp_enabled=False),
            seed=1,
            learning_rate=lr,
        )
    start = _model().get_global()["item_factors"]
    big = np.linalg.norm(model_a.get_global()["item_factors"] - start)
    small = np.linalg.norm(model_b.get_global()["item_factors"] - start)
    assert big > 10 * small


def test_ghost_clipping_gives_the_same_update_as_per_sample_gradients() -> None:
    # Same data, seeds and (negligible) noise: only the clipping implementation differs.
    # A tight clip bound makes every per-sample gradient clipped, so a wrong per-sample norm
    # (e.g. duplicates of an item within one sample not summed) would show here.
    results = {}
    for mode in ("hooks", "ghost"):
        model = _model()
        users, items = _data()
        torch.manual_seed(5)
        res = train_local(
            model,
            users,
            items,
            train=TrainConfig(local_epochs=2, learning_rate=0.5),
            privacy=PrivacyConfig(
                dp_noise_multiplier=1e-6,
                dp_max_grad_norm=0.01,
                dp_sample_rate=0.2,
                dp_grad_sample_mode=mode,
                reproducible_noise=True,  # the same batches and negatives for both modes
            ),
            seed=2,
        )
        results[mode] = (model.get_global(), model.get_users(), res.accountant_history)
    (shared_h, users_h, hist_h), (shared_g, users_g, hist_g) = results["hooks"], results["ghost"]
    assert hist_h == hist_g
    assert not np.allclose(shared_h["item_factors"], _model().get_global()["item_factors"])
    np.testing.assert_allclose(shared_g["item_factors"], shared_h["item_factors"], atol=1e-5)
    np.testing.assert_allclose(shared_g["item_bias"], shared_h["item_bias"], atol=1e-5)
    np.testing.assert_allclose(users_g, users_h, atol=1e-5)


@pytest.mark.parametrize("mode", ["ghost", "hooks"])
def test_empty_poisson_batches_are_noised_steps(mode: str) -> None:
    # A 3-record client at q = 0.1 draws many empty batches: each is still a noised step.
    model = _model()
    before = model.get_global()["item_factors"]
    res = train_local(
        model,
        np.zeros(3, dtype=np.int64),
        np.arange(3, dtype=np.int64),
        train=TrainConfig(local_epochs=3),
        privacy=PrivacyConfig(dp_sample_rate=0.1, dp_grad_sample_mode=mode),
        seed=4,
    )
    assert res.steps == res.accountant_history[0][2]
    assert (np.abs(model.get_global()["item_factors"] - before).sum(axis=1) > 0).all()


@pytest.mark.parametrize("n", [1, 3, 7, 10, 40, 99, 250])
def test_dp_plan_is_what_training_runs(n: int) -> None:
    train, privacy = TrainConfig(local_epochs=2), PrivacyConfig(dp_sample_rate=0.1)
    model = MatrixFactorization(1, N_ITEMS, 4)
    res = train_local(
        model,
        np.zeros(n, dtype=np.int64),
        np.arange(n, dtype=np.int64) % N_ITEMS,
        train=train,
        privacy=privacy,
        seed=0,
    )
    sigma, q, steps = dp_plan(train, privacy)  # the same for every n
    assert res.accountant_history == [(sigma, pytest.approx(q), steps)]


def test_dp_noise_cannot_be_regenerated_from_the_public_seed() -> None:
    # Regression: the noise generator was seeded from the run seed (in every manifest),
    # so the server could recompute and subtract a client's DP-SGD noise.
    updates = []
    for _ in range(2):
        model = _model()
        users, items = _data()
        train_local(model, users, items, train=TrainConfig(), privacy=PrivacyConfig(), seed=7)
        updates.append(model.get_global()["item_factors"])
    assert not np.allclose(updates[0], updates[1])
    # Only an explicit opt-in makes it reproducible, and the report then says so.
    again = []
    for _ in range(2):
        model = _model()
        users, items = _data()
        privacy = PrivacyConfig(reproducible_noise=True)
        train_local(model, users, items, train=TrainConfig(), privacy=privacy, seed=7)
        again.append(model.get_global()["item_factors"])
    np.testing.assert_array_equal(again[0], again[1])
    from fedrec.shared.privacy import report_for

    assert "does not hold" in str(report_for(PrivacyConfig(reproducible_noise=True), 1.0))
    assert "does not hold" not in str(report_for(PrivacyConfig(), 1.0))


def test_torch_cpu_generators_keep_32_seed_bits_so_dp_noise_never_uses_them() -> None:
    # Why the noise moved to a CSPRNG: seeds equal mod 2^32 give identical torch noise on
    # CPU, so a "secret" 63-bit seed could be brute-forced in 2^32 tries.
    seed = 123_456_789
    a = torch.randn(8, generator=torch.Generator().manual_seed(seed))
    b = torch.randn(8, generator=torch.Generator().manual_seed(seed + 2**32))
    torch.testing.assert_close(a, b)
    # fedrec's DP noise does not depend on any torch generator: the same public seed and the
    # same torch global seed give different noise in two runs.
    updates = []
    for _ in range(2):
        torch.manual_seed(0)
        model = _model()
        users, items = _data()
        train_local(model, users, items, train=TrainConfig(), privacy=PrivacyConfig(), seed=7)
        updates.append(model.get_global()["item_factors"])
    assert not np.allclose(updates[0], updates[1])


def _noise_std_of_update(n: int, privacy: PrivacyConfig) -> float:
    """The robust std of one client's item-table update when noise swamps the signal."""
    model = MatrixFactorization(1, 2000, 8)
    before = model.get_global()["item_factors"]
    rng = np.random.default_rng(n)
    train_local(
        model,
        np.zeros(n, np.int64),
        rng.choice(2000, n, replace=False),
        train=TrainConfig(local_epochs=1, num_negatives=1, learning_rate=1.0),
        privacy=privacy,
        seed=n,
    )
    delta = (model.get_global()["item_factors"] - before).ravel()
    return float(np.median(np.abs(delta)) / 0.6745)


def test_the_update_does_not_reveal_the_record_count() -> None:
    # Regression: the noised sum was divided by the client's own record count (Opacus'
    # expected batch size), so the noise std of an update was ~1/n and n could be read off
    # one update. Now the divisor is the public dp-batch-size: the noise scale is flat in n.
    privacy = PrivacyConfig(dp_noise_multiplier=1e4, dp_max_grad_norm=1.0, dp_batch_size=64)
    counts = np.array([4, 16, 64, 256, 1024])
    stds = np.array([_noise_std_of_update(int(n), privacy) for n in counts])
    expected = 1.0 * 1e4 * 1.0 / 64  # lr * sigma * C / B, whatever n
    np.testing.assert_allclose(stds, expected, rtol=0.05)
    slope = np.polyfit(np.log(counts), np.log(stds), 1)[0]
    assert abs(slope) < 0.02  # dividing by n gave a slope of -1


@pytest.mark.parametrize("rate", [1.0, 0.5])
def test_batches_and_negatives_are_secret_unless_reproducible(rate: float) -> None:
    # Regression: Poisson masks and negatives came from generators seeded by public seeds,
    # so the server knew every batch (no amplification) and every negative. With noise
    # negligible, an update is a function of its batches and negatives alone.
    def run(reproducible: bool) -> np.ndarray:
        model = _model()
        users, items = _data()
        privacy = PrivacyConfig(
            dp_noise_multiplier=1e-9, dp_sample_rate=rate, reproducible_noise=reproducible
        )
        train_local(model, users, items, train=TrainConfig(), privacy=privacy, seed=7)
        return model.get_global()["item_factors"]

    assert not np.allclose(run(False), run(False), atol=1e-6)
    np.testing.assert_array_equal(run(True), run(True))


def test_item_dropout_masks_come_from_the_dp_source(monkeypatch: pytest.MonkeyPatch) -> None:
    # Regression: the hybrid's item-factor dropout mask came from a generator seeded by a
    # public seed. Under DP it is drawn from the same secret source as the noise.
    import fedrec.shared.training as training
    from fedrec.shared.models.hybrid import HybridMF
    from fedrec.shared.privacy import SecureRandom

    drawn: list[tuple[int, ...]] = []

    class Recording(SecureRandom):
        def uniform_torch(self, shape):  # type: ignore[no-untyped-def]
            drawn.append(tuple(shape))
            return super().uniform_torch(shape)

    monkeypatch.setattr(training, "dp_random", lambda **_: Recording())
    text = np.random.default_rng(0).normal(size=(N_ITEMS, 384)).astype(np.float32)
    model = HybridMF(1, N_ITEMS, 8, text, factor_dropout=0.5, item_head=True)
    users, items = _data()
    train = TrainConfig(local_epochs=2, num_negatives=3)
    train_local(model, users, items, train=train, privacy=PrivacyConfig(), seed=7)
    assert drawn == [(len(items), 1 + 3)] * 2  # one mask per full-batch step
    assert model.dropout_mask is None  # not left behind for scoring
