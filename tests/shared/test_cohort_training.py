"""A cohort's batched DP-SGD equals each member's own train_local, noise included."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from fedrec.shared.cohort_training import MemberRun, supports, train_cohort_local
from fedrec.shared.config import FedRecConfig, resolve_config
from fedrec.shared.models.hybrid import HybridMF
from fedrec.shared.models.initial import init_text_shared, init_user_factors
from fedrec.shared.models.mf import MatrixFactorization
from fedrec.shared.training import train_local

N_ITEMS, DIM, TEXT = 40, 8, 384


def _cfg(**over: object) -> FedRecConfig:
    base = {
        "reproducible-noise": True,
        "embedding-dim": DIM,
        "local-epochs": 2,
        "dp-noise-multiplier": 1.3,
        "dp-max-grad-norm": 0.5,
        "dp-batch-size": 16,
        "learning-rate": 0.3,
    }
    return resolve_config({}, {**base, **over})


def _members(n: int, seed: int) -> list[MemberRun]:
    rng = np.random.default_rng(seed)
    out = []
    for m in range(n):
        n_users = 1 if m % 3 else 2  # some members are cross-silo blocks of users
        n_rec = int(rng.integers(3, 30))
        items = rng.integers(0, N_ITEMS, n_rec)
        items[: min(3, n_rec)] = items[0]  # repeated items: duplicate rows in one sample
        out.append(
            MemberRun(
                user_factors=init_user_factors(n_users, DIM, seed=seed + m),
                users=rng.integers(0, n_users, n_rec),
                items=items,
                accountant_history=[(1.3, 1.0, 2)] if m == 1 else [],
                seed=1000 + m,
            )
        )
    return out


def _globals(heads: bool, text: np.ndarray) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(5)
    out = {
        "item_factors": (rng.standard_normal((N_ITEMS, DIM)) * 0.3).astype(np.float32),
        "item_bias": (rng.standard_normal(N_ITEMS) * 0.1).astype(np.float32),
    }
    if heads:
        shared = init_text_shared(DIM, seed=3, std=0.05, item_head=False)
        out.update(shared)
    return out


def _one_by_one(
    cfg: FedRecConfig, glob: dict[str, np.ndarray], members: list[MemberRun], text: np.ndarray
) -> list[tuple[np.ndarray, dict[str, np.ndarray], float | None, list]]:
    out = []
    for m in members:
        n_users = len(m.user_factors)
        if cfg.text.text_tower == "heads":
            model: MatrixFactorization = HybridMF(
                n_users,
                N_ITEMS,
                DIM,
                text,
                item_head=False,
                align_weight=cfg.text.text_align_weight,
            )
        else:
            model = MatrixFactorization(n_users, N_ITEMS, DIM)
        model.set_global(glob)
        model.set_users(m.user_factors)
        result = train_local(
            model,
            m.users,
            m.items,
            train=cfg.train,
            privacy=cfg.privacy,
            accountant_history=m.accountant_history,
            seed=m.seed,
        )
        out.append(
            (model.get_users(), model.get_global(), result.epsilon, result.accountant_history)
        )
    return out


@pytest.mark.parametrize(
    "over",
    [
        {"text-tower": "heads"},
        {"text-tower": "off"},
        {"text-tower": "heads", "dp-sample-rate": 0.34},  # Poisson batches, some empty
        {"text-tower": "off", "proximal-mu": 0.5, "dp-grad-sample-mode": "hooks"},
    ],
)
def test_cohort_updates_equal_each_members_own_run(over: dict[str, object]) -> None:
    cfg = _cfg(**over)
    assert supports(cfg.train, cfg.privacy, cfg.text)
    text = np.random.default_rng(2).standard_normal((N_ITEMS, TEXT)).astype(np.float32)
    heads = cfg.text.text_tower == "heads"
    glob = _globals(heads, text)
    members = _members(7, seed=11)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # reproducible-noise's loud warning
        expected = _one_by_one(cfg, glob, members, text)
        got = train_cohort_local(
            glob,
            members,
            train=cfg.train,
            privacy=cfg.privacy,
            text=cfg.text,
            item_text=text if heads else None,
            learning_rate=cfg.train.learning_rate,
        )
    assert len(got) == len(members)
    for (users, tensors, eps, history), res in zip(expected, got, strict=True):
        np.testing.assert_allclose(res.user_factors, users, rtol=1e-5, atol=1e-6)
        assert set(res.global_tensors) == set(tensors)
        for name, value in tensors.items():
            np.testing.assert_allclose(res.global_tensors[name], value, rtol=1e-5, atol=1e-6)
        assert res.result.accountant_history == history
        assert res.result.epsilon == pytest.approx(eps)


def test_without_reproducible_noise_members_get_independent_noise() -> None:
    # Two identical members: equal under seeded noise, different under the CSPRNG.
    cfg = _cfg(**{"text-tower": "off", "reproducible-noise": False})
    glob = _globals(False, np.zeros((N_ITEMS, TEXT), np.float32))
    member = _members(1, seed=3)[0]
    a, b = train_cohort_local(
        glob,
        [member, member],
        train=cfg.train,
        privacy=cfg.privacy,
        text=cfg.text,
        item_text=None,
        learning_rate=0.3,
    )
    assert not np.allclose(a.global_tensors["item_factors"], b.global_tensors["item_factors"])
    # Every coordinate moved: the noise covers rows no record touched.
    moved = a.global_tensors["item_factors"] != glob["item_factors"]
    assert moved.all()


def test_unsupported_settings_are_refused() -> None:
    cfg = _cfg(**{"client-optimizer": "adam"})
    assert not supports(cfg.train, cfg.privacy, cfg.text)
    with pytest.raises(ValueError, match="member by member"):
        train_cohort_local(
            _globals(False, np.zeros((1, 1))),
            [],
            train=cfg.train,
            privacy=cfg.privacy,
            text=cfg.text,
            item_text=None,
            learning_rate=0.1,
        )


def test_members_split_into_chunks_train_as_in_one(monkeypatch: pytest.MonkeyPatch) -> None:
    # A large catalogue trains its members a chunk at a time (bounded memory): same result.
    import fedrec.shared.cohort_training as cohort

    cfg = _cfg(**{"text-tower": "off"})
    glob = _globals(False, np.zeros((N_ITEMS, TEXT), np.float32))
    members = _members(5, seed=4)
    kwargs = {"train": cfg.train, "privacy": cfg.privacy, "text": cfg.text, "item_text": None}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        whole = train_cohort_local(glob, members, learning_rate=0.3, **kwargs)  # type: ignore[arg-type]
        monkeypatch.setattr(cohort, "MAX_STACKED_ELEMENTS", 2 * N_ITEMS * (DIM + 1))
        chunked = train_cohort_local(glob, members, learning_rate=0.3, **kwargs)  # type: ignore[arg-type]
    for a, b in zip(whole, chunked, strict=True):
        np.testing.assert_allclose(
            a.global_tensors["item_factors"], b.global_tensors["item_factors"]
        )
        np.testing.assert_allclose(a.user_factors, b.user_factors)
