"""The packaged all-MiniLM-L6-v2: real weights, offline, cached, LoRA-adaptable under DP."""

from pathlib import Path

import numpy as np
import pytest
import torch

from fedrec.shared.config import FedRecConfig
from fedrec.shared.models import encoder as encoder_module
from fedrec.shared.models import text_cache
from fedrec.shared.models.encoder import TEXT_DIM, TextEncoder
from fedrec.shared.models.factory import make_model
from fedrec.shared.models.hybrid import HybridMF
from fedrec.shared.models.initial import LORA_PREFIX, init_global
from fedrec.shared.training import train_local


@pytest.fixture(scope="module")
def encoder() -> TextEncoder:
    return TextEncoder(max_length=16)


def test_real_pretrained_embeddings_carry_meaning(encoder: TextEncoder) -> None:
    e = encoder.encode(
        ["astronauts fly a rocket to space", "a spaceship in orbit", "a romantic wedding"]
    )
    assert e.shape == (3, TEXT_DIM)
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, rtol=1e-5)
    assert e[0] @ e[1] > e[0] @ e[2] + 0.2  # random weights would not separate these


def test_batching_and_order_do_not_change_vectors(encoder: TextEncoder) -> None:
    texts = ["short", "a somewhat longer sentence about films", "mid length text"]
    one_by_one = np.vstack([encoder.encode([t]) for t in texts])
    np.testing.assert_allclose(encoder.encode(texts, batch_size=2), one_by_one, atol=1e-5)


def test_truncation_is_flagged(encoder: TextEncoder) -> None:
    tokens = encoder.tokenize(["tiny", "word " * 50])
    assert tokens.truncated == [False, True]
    assert tokens.input_ids.shape[1] == 16


def test_a_text_exactly_at_the_limit_is_not_flagged(encoder: TextEncoder) -> None:
    # 14 word pieces + [CLS] + [SEP] fill the 16 tokens without cutting anything.
    exact, over = "word " * 14, "word " * 15
    tokens = encoder.tokenize([exact, over, "tiny"])
    assert tokens.attention_mask.sum(dim=1).tolist() == [16, 16, 3]
    assert tokens.truncated == [False, True, False]


def test_encode_flagged_is_encode_with_the_tokenizers_flags(encoder: TextEncoder) -> None:
    texts = ["word " * 50, "tiny", "a mid length sentence"]
    emb, truncated = encoder.encode_flagged(texts)
    np.testing.assert_array_equal(emb, encoder.encode(texts))
    assert truncated == encoder.tokenize(texts).truncated == [True, False, False]
    assert not encoder.training  # an encoder starts frozen, in eval mode
    encoder.train()
    try:
        np.testing.assert_array_equal(encoder.encode(texts), emb)  # eval mode for the pass
        assert encoder.training and encoder.backbone.training  # and its own mode after
    finally:
        encoder.eval()


def test_encode_parts_reads_each_word_off_one_pass(encoder: TextEncoder) -> None:
    texts = ["space adventure with robots", "word " * 50, "a quiet romantic drama"]

    def span(text: str, word: str) -> list[tuple[int, int]]:
        at = text.find(word)
        return [(at, at + len(word))] if at >= 0 else []

    groups = [
        [span(texts[0], "space"), span(texts[0], "robots"), []],
        [],
        [span(texts[2], "romantic")],
    ]
    emb, truncated, parts = encoder.encode_parts(texts, groups)
    full, cut = encoder.encode_flagged(texts)
    np.testing.assert_allclose(emb, full, atol=1e-5)  # the same sentence vectors and flags
    assert truncated == cut == [False, True, False]
    assert [p.shape for p in parts] == [(3, 2, TEXT_DIM), (0, 2, TEXT_DIM), (1, 2, TEXT_DIM)]
    # A group with no tokens leaves the text whole and is nothing alone.
    np.testing.assert_allclose(parts[0][2, 0], emb[0], atol=1e-5)
    np.testing.assert_array_equal(parts[0][2, 1], 0.0)
    np.testing.assert_allclose(np.linalg.norm(parts[0][:2], axis=-1), 1.0, rtol=1e-5)
    # Leaving a word's tokens out moves the vector toward the text re-encoded without it,
    # and a word alone is nearer that word than another of the text's words is.
    shorter = encoder.encode(["adventure with robots", "a quiet drama"])
    assert parts[0][0, 0] @ shorter[0] > emb[0] @ shorter[0]
    assert parts[2][0, 0] @ shorter[1] > emb[2] @ shorter[1]
    alone = encoder.encode(["space", "robots"])
    assert parts[0][0, 1] @ alone[0] > parts[0][0, 1] @ alone[1]
    assert parts[0][1, 1] @ alone[1] > parts[0][1, 1] @ alone[0]
    with pytest.raises(ValueError, match="span groups"):
        encoder.encode_parts(texts, groups[:2])


def test_embeddings_are_cached_by_content(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    texts = ["Heat (1995). Genres: Action, Crime.", "Babe (1995). Genres: Comedy."]
    first = text_cache.text_embeddings(texts, tmp_path, max_length=32)
    assert len(list(tmp_path.glob("text-emb-*.npy"))) == 1
    text_cache._load_or_encode.cache_clear()

    def no_encoder(*args: object, **kwargs: object) -> None:
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(encoder_module, "TextEncoder", no_encoder)
    np.testing.assert_array_equal(text_cache.text_embeddings(texts, tmp_path, max_length=32), first)
    # Other texts or another token limit are another entry, never a stale hit.
    assert text_cache.cache_key(texts, 32) != text_cache.cache_key(texts[:1], 32)
    assert text_cache.cache_key(texts, 32) != text_cache.cache_key(texts, 64)


def test_lora_adapters_train_under_dp_and_start_identical(tmp_path: Path) -> None:
    cfg = FedRecConfig().replace(
        **{
            "text-tower": "lora",
            "text-cache-dir": str(tmp_path),
            "embedding-dim": 4,
            "lora-layers": 1,
            "lora-rank": 2,
            "dp-grad-sample-mode": "hooks",
        }
    )
    texts = [f"Film {i}. Genres: {'Action' if i % 2 else 'Comedy'}." for i in range(12)]
    start = init_global(cfg, len(texts))
    adapters = [k for k in start if k.startswith(LORA_PREFIX)]
    assert len(adapters) == 4  # A and B of query and value in one layer
    again = init_global(cfg, len(texts))
    for key in adapters:
        np.testing.assert_array_equal(start[key], again[key])
    model = make_model(cfg, 1, texts)
    assert isinstance(model, HybridMF) and model.user_encoder is not None
    model.set_global(start)
    res = train_local(
        model,
        np.zeros(12, np.int64),
        np.arange(12, dtype=np.int64),
        train=cfg.train,
        privacy=cfg.privacy,
        seed=0,
    )
    after = model.get_global()
    assert res.epsilon is not None and res.epsilon > 0
    for key in adapters:
        assert np.abs(after[key] - start[key]).min() > 0, key  # noised everywhere
    frozen = [p for n, p in model.user_encoder.named_parameters() if "lora_" not in n]
    assert frozen and not any(p.requires_grad for p in frozen)


def test_lora_user_tower_reads_only_the_batch_longest_tokens(tmp_path: Path) -> None:
    cfg = FedRecConfig().replace(
        **{"text-tower": "lora", "text-cache-dir": str(tmp_path), "embedding-dim": 4}
    )
    texts = ["Up.", "Heat (1995). Genres: Action, Crime, Thriller, Drama, War, Western."]
    model = make_model(cfg, 1, texts)
    assert isinstance(model, HybridMF) and model.user_encoder is not None
    model.eval()  # no dropout: the two paths must agree exactly
    widths: list[int] = []
    model.user_encoder.register_forward_hook(lambda m, args, out: widths.append(args[0].shape[1]))
    short = torch.tensor([0, 0])
    trimmed = model._positive_text(short)
    full_width = model.item_input_ids.shape[1]
    assert widths == [int(model.item_attention_mask[0].sum())] and widths[0] < full_width
    untrimmed = model.user_encoder(model.item_input_ids[short], model.item_attention_mask[short])
    torch.testing.assert_close(trimmed, untrimmed, atol=1e-5, rtol=1e-5)
    model._positive_text(torch.tensor([0, 1]))
    assert widths[-1] == full_width
    # Catalogue tokens are computed once per process and match the encoder's own.
    again = text_cache.catalogue_tokens(texts, max_length=cfg.text.text_max_length)
    assert again is text_cache.catalogue_tokens(texts, max_length=cfg.text.text_max_length)
    torch.testing.assert_close(again.input_ids, model.user_encoder.tokenize(texts).input_ids)
