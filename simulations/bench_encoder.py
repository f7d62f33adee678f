"""Encoder and local-training cost: what the text towers and DP-SGD add to a client.

1. Encoder latency, as the HTTP service sees it: one short text per call (p50/p99), and
   batched calls (per-text cost), on the chosen device.
2. One client's local training (1 local epoch, the client code path ``train_local``) on
   real ML-100K users, for plain MF, hybrid heads, and heads + LoRA, each without and with
   record-level DP-SGD (Opacus): seconds per client, milliseconds per step, and the DP
   overhead (DP time / non-DP time). The mean over ``clients`` users times the number of
   clients gives a round's compute on one device.
3. One federated round end to end, head-only vs LoRA, with the product's defaults
   (record-level DP-SGD, 2 local epochs): the plain single-process federation (the same
   client and aggregation code as a Flower round) over the first ``round_clients`` users --
   wall time of the round, per client, and the bytes of the shared model each client
   receives and sends back (dense tensors, float32).
"""

from __future__ import annotations

import logging
import platform
import statistics
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fedrec.shared.config import resolve_config
from fedrec.shared.data import load_split
from fedrec.shared.device import resolve_device
from fedrec.shared.models.encoder import TextEncoder
from fedrec.shared.models.factory import make_model
from fedrec.shared.models.initial import init_global
from fedrec.shared.models.text_cache import MODEL_NAME
from fedrec.shared.training import train_local
from fedrec.simulation.plain_loop import PlainLoop
from fedrec.simulations.report import save

logger = logging.getLogger(__name__)

ARMS = (
    ("MF", "off", "ghost"),
    ("hybrid heads", "heads", "ghost"),
    ("heads + LoRA (ghost)", "lora", "ghost"),
    ("heads + LoRA (hooks)", "lora", "hooks"),
)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _texts(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    genres = ["action", "comedy", "drama", "sci-fi", "romance", "thriller", "horror", "war"]
    out = []
    for _ in range(n):
        g = rng.choice(genres, size=3, replace=False)
        out.append(f"I like {g[0]} and {g[1]} films, sometimes {g[2]}; recently space operas.")
    return out


def encoder_latency(device: torch.device, requests: int) -> dict[str, Any]:
    """Milliseconds per single-text call (p50/p99) and per text in batches of 32 and 128."""
    encoder = TextEncoder(max_length=256, device=device)
    texts = _texts(requests + 256, seed=0)
    for t in texts[:5]:
        encoder.encode([t])  # warm-up: kernels, allocator
    single = []
    for t in texts[:requests]:
        _sync(device)
        t0 = time.perf_counter()
        encoder.encode([t])
        _sync(device)
        single.append((time.perf_counter() - t0) * 1000)
    out: dict[str, Any] = {
        "batch 1: p50 ms": float(np.percentile(single, 50)),
        "batch 1: p99 ms": float(np.percentile(single, 99)),
    }
    for size in (32, 128):
        per_text = []
        for rep in range(5):
            batch = texts[rep * 16 : rep * 16 + size]
            _sync(device)
            t0 = time.perf_counter()
            encoder.encode(batch, batch_size=size)
            _sync(device)
            per_text.append((time.perf_counter() - t0) * 1000 / len(batch))
        out[f"batch {size}: ms per text (median of 5)"] = float(statistics.median(per_text))
    return out


def local_training_cost(
    device: torch.device, clients: int, lora_clients: int | None = None
) -> list[dict[str, Any]]:
    """Per-client local training time of each arm, without and with DP.

    LoRA arms time ``lora_clients`` users (default: ``clients``): on a CPU they cost about
    a minute per client with DP.
    """
    base = resolve_config({}, {"local-epochs": 1})
    dataset, split = load_split(base.data)
    counts = np.bincount(split.train.users, minlength=split.n_users)
    # Typical users: those around the median number of records, seeded.
    order = np.argsort(np.abs(counts - np.median(counts)), kind="stable")
    users = order[:clients]
    rows = []
    for label, tower, mode in ARMS:
        for dp in (False, True):
            cfg = base.replace(
                **{"text-tower": tower, "dp-enabled": dp, "dp-grad-sample-mode": mode}
            )
            shared = init_global(cfg, split.n_items)
            seconds, steps = [], 0
            arm_users = users[: lora_clients or clients] if tower == "lora" else users
            for k, u in enumerate(arm_users):
                model = make_model(cfg, 1, dataset.items.texts, device=device)
                model.set_global(shared)
                items = split.train.items[split.train.users == u]
                if k == 0:  # warm-up client: lazy imports, kernels
                    train_local(
                        model,
                        np.zeros(len(items), np.int64),
                        items,
                        train=cfg.train,
                        privacy=cfg.privacy,
                        seed=0,
                        device=device,
                    )
                    model = make_model(cfg, 1, dataset.items.texts, device=device)
                    model.set_global(shared)
                _sync(device)
                t0 = time.perf_counter()
                result = train_local(
                    model,
                    np.zeros(len(items), np.int64),
                    items,
                    train=cfg.train,
                    privacy=cfg.privacy,
                    seed=int(u),
                    device=device,
                )
                _sync(device)
                seconds.append(time.perf_counter() - t0)
                steps += result.steps
            row: dict[str, Any] = {
                "model": label,
                "dp": dp,
                "grad_sample_mode": mode if dp else "-",
                "s_per_client": float(np.mean(seconds)),
                "ms_per_step": float(1000 * np.sum(seconds) / max(steps, 1)),
                "clients": len(arm_users),
                "records_per_client": float(np.mean(counts[arm_users])),
            }
            logger.info("%s dp=%s: %.3fs per client", label, dp, row["s_per_client"])
            rows.append(row)
    for row in rows:
        if row["dp"]:
            plain = next(r for r in rows if r["model"] == row["model"] and not r["dp"])
            row["dp_overhead"] = row["s_per_client"] / plain["s_per_client"]
    return rows


def federated_round_cost(
    device: torch.device, clients: int | Sequence[int], overrides: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """One round of each number of ``clients``, head-only and LoRA, product defaults (DP on).

    A first round of one client (not timed) loads the encoder and fills the embedding
    cache, as the first round of a real run does once per node.
    """
    sizes = [clients] if isinstance(clients, int) else list(clients)
    rows = []
    for tower, n in ((t, n) for t in ("heads", "lora") for n in sizes):
        with tempfile.TemporaryDirectory(prefix="fedrec-round-") as tmp:
            cfg = resolve_config({}, {**(overrides or {}), "text-tower": tower, "output-dir": tmp})
            _, split = load_split(cfg.data)
            fed = PlainLoop(
                cfg, split.n_users, init_global(cfg, split.n_items), Path(tmp), device=device
            )
            fed.train_round([split.n_users - 1], 1)  # warm-up
            parts = list(range(min(n, split.n_users - 1)))
            _sync(device)
            seconds = fed.train_round(parts, 2)
            _sync(device)
            size = int(sum(np.asarray(v).nbytes for v in fed.global_tensors.values()))
            text = int(sum(np.asarray(v).nbytes for k, v in fed.global_tensors.items() if "." in k))
            rows.append(
                {
                    "text_tower": tower,
                    "clients": len(parts),
                    "round_s": seconds,
                    "s_per_client": seconds / len(parts),
                    "update_bytes": size,
                    "text_tower_bytes": text,
                    "dp": cfg.privacy.dp_enabled,
                    "local_epochs": cfg.train.local_epochs,
                    "dp_sample_rate": cfg.privacy.dp_sample_rate,
                }
            )
            logger.info(
                "round, %s: %d clients in %.1fs (%.2fs each), update %.2f MB",
                tower,
                len(parts),
                seconds,
                seconds / len(parts),
                size / 1e6,
            )
    return rows


def run_encoder_benchmark(
    *,
    output_dir: Path,
    device: str = "auto",
    name: str = "encoder",
    requests: int = 200,
    clients: int = 10,
    lora_clients: int | None = None,
    round_clients: int | Sequence[int] = 10,
) -> dict[str, Any]:
    """Measure and write ``<name>.json`` / ``<name>.md``."""
    dev = resolve_device(device)
    result: dict[str, Any] = {
        "benchmark": name,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "device": str(dev),
            "gpu": torch.cuda.get_device_name(dev) if dev.type == "cuda" else None,
            "torch_threads": torch.get_num_threads(),
            "platform": platform.platform(),
            "torch": torch.__version__,
        },
        "encoder": MODEL_NAME,
        "dataset": resolve_config({}).data.dataset,  # the clients' data: the default data set
        "latency": encoder_latency(dev, requests),
        "local_training": local_training_cost(dev, clients, lora_clients),
    }
    sizes = [round_clients] if isinstance(round_clients, int) else list(round_clients)
    sizes = [n for n in sizes if n > 0]
    if sizes:
        result["federated_round"] = federated_round_cost(dev, sizes)
    save(result, output_dir, name, kind="encoder")
    return result
