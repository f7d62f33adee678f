"""The encoder benchmark's end-to-end round: head-only vs LoRA through the plain federation."""

from pathlib import Path

import torch

from fedrec.simulations.bench_encoder import federated_round_cost
from fedrec.simulations.reports.encoder import encoder_markdown
from tests.e2e.helpers import write_tiny_ratings


def test_a_round_of_heads_and_of_lora_is_timed_and_sized(tmp_path: Path) -> None:
    data = write_tiny_ratings(tmp_path / "r.csv", n_users=5, n_items=20, per_user=8)
    rows = federated_round_cost(
        torch.device("cpu"),
        [2, 3],
        {"dataset": "generic", "data-path": str(data), "embedding-dim": 4, "lora-layers": 1},
    )
    assert [(r["text_tower"], r["clients"]) for r in rows] == [
        ("heads", 2),
        ("heads", 3),
        ("lora", 2),
        ("lora", 3),
    ]
    heads, lora = rows[1], rows[3]
    for r in rows:
        assert r["round_s"] > 0 and r["dp"]
        assert 0 < r["text_tower_bytes"] < r["update_bytes"]
    # LoRA adapters travel on top of the heads.
    assert lora["text_tower_bytes"] > heads["text_tower_bytes"]
    assert lora["update_bytes"] - heads["update_bytes"] == (
        lora["text_tower_bytes"] - heads["text_tower_bytes"]
    )
    text = encoder_markdown(
        {
            "machine": {"gpu": None, "torch_threads": 1, "platform": "p", "torch": "t"},
            "created_at": "now",
            "encoder": "e",
            "dataset": "ml-100k",
            "latency": {"batch 1: p50 ms": 1.0},
            "local_training": [
                {
                    "model": "MF",
                    "dp": False,
                    "grad_sample_mode": "-",
                    "s_per_client": 0.1,
                    "ms_per_step": 1.0,
                    "clients": 1,
                    "records_per_client": 60.0,
                }
            ],
            "federated_round": rows,
        }
    )
    assert "One federated round end to end" in text
    assert f"| lora | 3 | {lora['round_s']:.2f} |" in text
