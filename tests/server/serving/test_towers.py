"""The text towers at serving time: LoRA adapters, no item head, training's item vectors."""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from fedrec.server.serving import Recommender, TextTowers
from fedrec.shared.config import FedRecConfig
from fedrec.shared.data.dataset import ItemCatalog
from fedrec.shared.models.encoder import TEXT_DIM, lora_state
from fedrec.shared.models.hybrid import HybridMF
from fedrec.shared.models.initial import LORA_PREFIX, init_global
from tests.server.serving.conftest import numbered_catalog, served


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
    rec = served(tmp_path / "run", catalog, tensors, cfg)
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


def test_a_checkpoint_without_an_item_head_serves_text_and_places_new_items(
    tmp_path: Path,
) -> None:
    cfg = FedRecConfig().replace(
        **{"item-head": False, "embedding-dim": 4, "text-cache-dir": str(tmp_path / "cache")}
    )
    catalog = numbered_catalog(6)
    tensors = init_global(cfg, 6)
    assert "text.item_head.weight" not in tensors and "text.user_head.weight" in tensors
    rec = served(tmp_path / "run", catalog, tensors, cfg)
    assert rec.has_text
    # Items are their factors: no text part is added to the trained table.
    np.testing.assert_allclose(rec.q, tensors["item_factors"], rtol=1e-6)
    assert len(rec.cold_start(text="a funny film", k=3).items) == 3
    item = rec.add_item("new", "A new film", ["Comedy"])  # small catalogue: no map, no head
    assert rec.text_map is None and item.index == 6
    np.testing.assert_array_equal(rec.q[6], 0.0)


def test_serving_places_items_where_training_does() -> None:
    # Prepare: a hybrid with an item head and weights far from their initial zeros.
    n, dim = 30, 4
    rng = np.random.default_rng(3)
    emb = rng.standard_normal((n, TEXT_DIM)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    model = HybridMF(2, n, dim, emb)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    tensors = model.get_global()
    # Execute: training's item table, and the table and head placement serving builds.
    trained_q, trained_b = (x.numpy() for x in model.item_table())
    towers = TextTowers(tensors)
    rec = Recommender(
        tensors["item_factors"],
        tensors["item_bias"],
        numbered_catalog(n),
        towers=towers,
        item_text_emb=emb,
    )
    head_q, head_b = towers.item_part(emb)
    # Assert: the same vectors and biases, and the head's part is what the factors lack.
    np.testing.assert_allclose(rec.q, trained_q, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(rec.b, trained_b, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(head_q, trained_q - tensors["item_factors"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(head_b, trained_b - tensors["item_bias"], rtol=1e-5, atol=1e-5)


def test_user_texts_seen_before_skip_the_encoder_and_the_cache_is_bounded() -> None:
    tensors = {
        "text.user_head.weight": np.zeros((2, TEXT_DIM), np.float32),
        "text.user_head.bias": np.zeros(2, np.float32),
    }
    towers = TextTowers(tensors, max_length=8)
    passes: list[list[str]] = []
    run = towers._encode_user_now

    def counted(texts: list[str]) -> tuple[np.ndarray, list[bool]]:
        passes.append(texts)
        return run(texts)

    towers._user_batcher._run = counted
    first, cut = towers.encode_user(["space films", "word " * 20, "space films"])
    again, cut_again = towers.encode_user(["word " * 20, "space films"])
    assert passes == [["space films", "word " * 20]]  # each distinct text encoded once
    assert cut == [False, True, False] and cut_again == [True, False]
    np.testing.assert_array_equal(again, first[[1, 0]])
    np.testing.assert_array_equal(
        first, towers._encode_user_now(["space films", "word " * 20, "space films"])[0]
    )
    # Another token limit is another entry; past the bound, the least recently used goes.
    towers.max_length = 16
    towers.user_cache_size = 2
    towers.encode_user(["word " * 20, "a", "b"])
    assert passes[-1] == ["word " * 20, "a", "b"]
    assert list(towers._user_cache) == [(16, "a"), (16, "b")]


def test_concurrent_passes_give_each_text_its_own_embedding() -> None:
    tensors = {
        "text.user_head.weight": np.zeros((2, TEXT_DIM), np.float32),
        "text.user_head.bias": np.zeros(2, np.float32),
    }
    towers = TextTowers(tensors, max_length=32, passes=2)
    texts = [f"{w} films about {w} and more {w}" * (1 + i % 3) for i, w in enumerate("abcdefgh")]
    alone = np.vstack([towers._encode_user_now([t])[0] for t in texts])
    with ThreadPoolExecutor(8) as pool:
        rows = list(pool.map(lambda t: towers.encode_user([t])[0][0], texts))
    np.testing.assert_allclose(np.vstack(rows), alone, atol=1e-5)
