"""The hybrid model: text towers over cached embeddings, trained under the same DP-SGD."""

import numpy as np
import pytest
import torch

from fedrec.shared.config import PrivacyConfig, TrainConfig
from fedrec.shared.models.hybrid import HybridMF
from fedrec.shared.models.initial import HEAD_KEYS, init_shared, init_text_shared
from fedrec.shared.training import finetune_users, train_local

N_ITEMS, DIM = 30, 4


def _emb(seed: int = 0) -> np.ndarray:
    e = np.random.default_rng(seed).standard_normal((N_ITEMS, 384)).astype(np.float32)
    return e / np.linalg.norm(e, axis=1, keepdims=True)


def _model(dropout: float = 0.0, seed: int = 0) -> HybridMF:
    torch.manual_seed(seed)
    model = HybridMF(2, N_ITEMS, DIM, _emb(), factor_dropout=dropout)
    model.set_global({**init_shared(N_ITEMS, DIM, seed=1), **init_text_shared(DIM, seed=1)})
    return model


def test_forward_is_scores_plus_per_sample_alignment() -> None:
    model = _model().eval()
    users = torch.tensor([0, 1, 1])
    items = torch.tensor([[1, 2, 3], [4, 5, 6], [4, 7, 8]])
    out = model(users, items)
    assert out.shape == (3, 4)
    vectors, bias = model.item_table()
    expected = model.user(users) @ vectors.T + bias
    torch.testing.assert_close(out[:, :3], expected.gather(1, items))
    # Alignment of a sample: the user head on its positive item's text vs its user factor.
    pred = model.user_head(model.item_text[items[:, 0]])
    torch.testing.assert_close(out[:, 3], (pred - model.user(users)).pow(2).sum(-1))


def test_each_sample_loss_depends_on_its_own_record_only() -> None:
    # The per-sample sensitivity argument of record-level DP-SGD: changing one sample's
    # record must not change another sample's loss or gradient.
    model = _model()
    users = torch.tensor([0, 0])
    a = torch.tensor([[1, 9, 8], [2, 7, 6]])
    b = torch.tensor([[1, 9, 8], [20, 21, 22]])
    losses_a = model.per_sample_loss(model(users, a))
    losses_b = model.per_sample_loss(model(users, b))
    torch.testing.assert_close(losses_a[0], losses_b[0])
    grads = []
    for batch in (a, b):
        model.zero_grad()
        model.per_sample_loss(model(users[:1], batch[:1])).sum().backward()
        grads.append(model.user_head.weight.grad.clone())  # type: ignore[union-attr]
    torch.testing.assert_close(grads[0], grads[1])


def test_factor_dropout_only_in_training_and_seeded() -> None:
    model = _model(dropout=0.5)
    users, items = torch.tensor([0]), torch.arange(N_ITEMS)[None, :]
    outs = []
    for _ in range(2):
        gen = torch.Generator().manual_seed(3)
        model.dropout_mask = lambda shape, gen=gen: torch.rand(shape, generator=gen)
        outs.append(model.train().score(users, items))
    torch.testing.assert_close(outs[0], outs[1])
    full = model.eval().score(users, items)
    assert not torch.allclose(outs[0], full)


def _dp_epoch(model: HybridMF, mode: str) -> dict[str, np.ndarray]:
    """One DP-SGD epoch over 20 records of user 0 (items 0-4); the shared tensors after."""
    res = train_local(
        model,
        np.zeros(20, np.int64),
        np.arange(20, dtype=np.int64) % 5,
        train=TrainConfig(local_epochs=1),
        privacy=PrivacyConfig(dp_grad_sample_mode=mode),
        seed=0,
    )
    assert res.epsilon is not None and res.epsilon > 0
    return model.get_global()


@pytest.mark.parametrize("mode", ["ghost", "hooks"])
def test_dp_training_noises_every_shared_tensor(mode: str) -> None:
    model = _model(dropout=0.25)
    before = model.get_global()
    after = _dp_epoch(model, mode)
    for key in ("item_factors", *HEAD_KEYS):
        moved = np.abs(after[key] - before[key])
        # Dense noise: every row (touched or not) and every head weight moves.
        assert (moved.reshape(moved.shape[0], -1).sum(axis=1) > 0).all(), key


def test_ghost_and_per_sample_clipping_agree_on_the_hybrid() -> None:
    results = {}
    for mode in ("hooks", "ghost"):
        model = _model()
        torch.manual_seed(5)
        train_local(
            model,
            np.zeros(40, np.int64),
            np.arange(40, dtype=np.int64) % 10,
            train=TrainConfig(local_epochs=1, learning_rate=0.5),
            privacy=PrivacyConfig(
                dp_noise_multiplier=1e-6,
                dp_max_grad_norm=0.01,
                dp_sample_rate=0.2,
                dp_grad_sample_mode=mode,
                reproducible_noise=True,  # the same batches, negatives and dropout for both
            ),
            seed=2,
        )
        results[mode] = model.get_global()
    for key, value in results["hooks"].items():
        np.testing.assert_allclose(results["ghost"][key], value, atol=1e-5, err_msg=key)


def test_personalisation_fits_only_the_user_factor() -> None:
    model = _model(dropout=0.5)
    shared = model.get_global()
    users = model.get_users()
    finetune_users(
        model, np.zeros(10, np.int64), np.arange(10), train=TrainConfig(), epochs=2, seed=0
    )
    for key, value in model.get_global().items():
        np.testing.assert_array_equal(value, shared[key])
    assert not np.allclose(model.get_users(), users)
    assert all(p.requires_grad for p in model.parameters())


def test_a_model_without_text_tensors_is_refused_clearly() -> None:
    model = _model()
    with pytest.raises(ValueError, match="text-tower"):
        model.set_global(init_shared(N_ITEMS, DIM, seed=1))
    with pytest.raises(ValueError, match="item_text"):
        HybridMF(1, N_ITEMS, DIM, np.zeros((N_ITEMS, 10), np.float32))


def test_default_alignment_leaves_dp_sgd_clip_budget_to_the_recommender() -> None:
    # DP-SGD clips each sample's whole gradient. A bug: at text-align-weight 1.0 the user
    # head's alignment gradient took ~70% of a sample's squared gradient norm at
    # initialisation, so clipping scaled the MF signal down and DP hybrid NDCG@10 halved.
    from fedrec.shared.config import TextConfig

    n_items, dim = 200, 32  # the default embedding dimension and init scale
    emb = np.random.default_rng(0).standard_normal((n_items, 384)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    torch.manual_seed(0)
    model = HybridMF(4, n_items, dim, emb, align_weight=TextConfig().text_align_weight)
    model.set_global({**init_shared(n_items, dim, seed=1), **init_text_shared(dim, seed=1)})
    shares = []
    for s in range(16):
        model.zero_grad()
        items = torch.randint(0, n_items, (1, 5), generator=torch.Generator().manual_seed(s))
        model.per_sample_loss(model(torch.tensor([s % 4]), items)).sum().backward()
        sq = {
            n: float(p.grad.pow(2).sum()) for n, p in model.named_parameters() if p.grad is not None
        }
        shares.append(sum(v for n, v in sq.items() if n.startswith("user_head")) / sum(sq.values()))
    assert max(shares) < 0.1, shares


@pytest.mark.parametrize("mode", ["ghost", "hooks"])
def test_without_an_item_head_items_are_scored_as_in_mf_and_dp_still_covers_all(
    mode: str,
) -> None:
    torch.manual_seed(0)
    model = HybridMF(2, N_ITEMS, DIM, _emb(), factor_dropout=0.5, item_head=False)
    text = init_text_shared(DIM, seed=1, item_head=False)
    assert set(text) == {"text.user_head.weight", "text.user_head.bias"}
    model.set_global({**init_shared(N_ITEMS, DIM, seed=1), **text})
    model.train()  # dropout would show here: there is none without an item head
    users, items = torch.tensor([0, 1]), torch.tensor([[1, 2, 3], [4, 5, 6]])
    out = model(users, items)
    mf = (model.user(users)[:, None, :] * model.item(items)).sum(-1) + model.item_bias(items)[
        ..., 0
    ]
    torch.testing.assert_close(out[:, :3], mf)
    vectors, bias = model.item_table()
    torch.testing.assert_close(vectors, model.item.weight)
    # A global model that has an item head does not fit this one.
    with pytest.raises(ValueError, match="item-head = true"):
        model.set_global({**init_shared(N_ITEMS, DIM, seed=1), **init_text_shared(DIM, seed=1)})
    before = model.get_global()
    assert set(before) == {"item_factors", "item_bias", *text}
    after = _dp_epoch(model, mode)
    for key in before:
        assert (np.abs(after[key] - before[key]) > 0).any(), key  # noised
