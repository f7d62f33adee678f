"""Train the private co-occurrence model over a simulated federation, one client per user.

One release, so one pass (docs/privacy.md, "The private co-occurrence model"):

1. every client computes :func:`fedrec.client.cooccurrence.cooccurrence_share` from its own
   training items (its term plus its noise share);
2. the server gets their sum only, by SecAgg+'s arithmetic under ``user-dp = secagg``
   (:class:`fedrec.server.secagg.SecureSumAccumulator`: quantized, summed, dequantized; the
   masks, which cancel, are left out), a plain sum otherwise;
3. the server adds central noise when placed there, builds the item factors and the text
   head (:mod:`fedrec.server.cooccurrence`) and writes a servable checkpoint of kind
   ``cooccurrence``, whose ``user_privacy`` states the guarantee.

This is the single-process driver: the clients' and the server's code are the product's,
the messages between them are function calls.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fedrec.client.cooccurrence import cooccurrence_share
from fedrec.server.cooccurrence import (
    RELEASE_TENSOR,
    model_of_release,
    release_clipping,
    release_sum,
)
from fedrec.server.secagg import (
    SecureSumAccumulator,
    noise_survivors,
    quantization_levels,
)
from fedrec.shared.checkpoint import save_catalog, save_checkpoint
from fedrec.shared.config import CooccurrenceConfig, FedRecConfig, resolve_config
from fedrec.shared.data import load_split
from fedrec.shared.data.dataset import Split
from fedrec.shared.errors import ConfigError
from fedrec.shared.evaluation import evaluate_model
from fedrec.shared.models.cooccurrence import user_vector, vector_size
from fedrec.shared.privacy import dp_random
from fedrec.shared.privacy.cooccurrence import ReleasePlan, plan_release, release_report

logger = logging.getLogger(__name__)

KIND = "cooccurrence"
MAX_WORKERS = 4  # processes simulating the clients' shares
BLOCK = 64  # users per task of a worker: progress is reported per block
PARALLEL_FROM = 200_000_000  # entries of all shares together from which workers pay off
# Item-item statistics are dense n x n: past this many items a client's vector is too big.
MAX_ITEMS = 5_000
# The SecAgg+ settings a 943-client release over Flower finishes with (all-pairs share graphs
# do not: docs/benchmarks/secagg.md): a ring of 7 shares, and the server's promise to unmask
# no sum of fewer than 90% of the clients, for which every client sizes its noise share. The
# demo and the co-occurrence benchmarks release with them, so what they show is deployable.
DEPLOYABLE_SECAGG: dict[str, float] = {"secagg-num-shares": 7.0, "secagg-min-survivors": 0.9}


@dataclass(frozen=True)
class CooccurrenceRun:
    """What one training produced."""

    run_dir: Path
    plan: ReleasePlan
    tensors: dict[str, np.ndarray]
    test: dict[str, float]
    seconds: float
    bytes_per_client: int  # the vector each client sends, as float32

    @property
    def item_model_bytes(self) -> int:
        """What a device downloads to rank on its own: item factors and biases, float32."""
        return 4 * (self.tensors["item_factors"].size + self.tensors["item_bias"].size)


def _shares(
    cfg: FedRecConfig, by_user: list[np.ndarray], first: int, n_items: int, plan: ReleasePlan
) -> SecureSumAccumulator | np.ndarray:
    """The summed shares of users ``first, first + 1, ...`` (one worker's part).

    Under SecAgg+ the quantized integers (exact to add up in any order), else the floats.
    """
    reproducible = cfg.privacy.reproducible_noise
    acc = None
    if plan.placement == "secagg":
        acc = SecureSumAccumulator(release_clipping(plan), quantization_levels(plan.users))
    total = np.zeros(vector_size(n_items), np.float64)
    for offset, items in enumerate(by_user):
        rng = None
        if plan.client_std > 0:
            rng = dp_random(
                reproducible=reproducible,
                seeds=(cfg.data.seed, first + offset),
                what="co-occurrence release",
            )
        share = cooccurrence_share(items, n_items, plan.client_std, rng)
        if acc is not None:
            acc.add({RELEASE_TENSOR: share})
        else:
            total += share
    return acc if acc is not None else total


def released_sum(
    cfg: FedRecConfig,
    split: Split,
    plan: ReleasePlan,
    *,
    progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
    block_size: int = BLOCK,
) -> np.ndarray:
    """Every client's share, summed as the server receives it, plus the server's noise.

    The clients are simulated by ``workers`` processes (default: one per CPU, at most
    :data:`MAX_WORKERS`, for a release big enough to repay starting them), each summing the
    shares of a block of users as the server would; their sums add up to the same release
    (SecAgg+'s integers exactly).
    """
    n_items = split.n_items
    by_user = split.train_items_by_user()
    if workers is None:
        big = len(by_user) * vector_size(n_items) >= PARALLEL_FROM
        workers = min(os.cpu_count() or 1, MAX_WORKERS) if big else 1
    blocks = [
        (start, by_user[start : start + block_size]) for start in range(0, len(by_user), block_size)
    ]
    parts: list[SecureSumAccumulator | np.ndarray] = []
    done = 0

    def note(part: SecureSumAccumulator | np.ndarray, size: int) -> None:
        nonlocal done
        parts.append(part)
        done += size
        if progress is not None:
            progress(done, len(by_user))

    if workers <= 1 or len(blocks) <= 1:
        for start, block in blocks:
            note(_shares(cfg, block, start, n_items, plan), len(block))
    else:
        # spawn, not fork: the parent may hold torch's and the encoder's threads
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            futures = {
                pool.submit(_shares, cfg, block, start, n_items, plan): len(block)
                for start, block in blocks
            }
            for future in as_completed(futures):
                note(future.result(), futures[future])
    if plan.placement == "secagg":
        acc = parts[0]
        assert isinstance(acc, SecureSumAccumulator)
        for part in parts[1:]:
            assert isinstance(part, SecureSumAccumulator)
            acc.merge(part)
        total = acc.total()[RELEASE_TENSOR]
    else:
        total = np.sum([np.asarray(p) for p in parts], axis=0)
    return release_sum(cfg, total, plan)


def scores_of(
    tensors: dict[str, np.ndarray], split: Split, cfg: CooccurrenceConfig
) -> Callable[[np.ndarray], np.ndarray]:
    """What each user computes on its device: :func:`user_vector` against every item."""
    q = tensors["item_factors"].astype(np.float64)
    bias = tensors["item_bias"].astype(np.float64)
    by_user = split.train_items_by_user()
    rank, fade = cfg.collaborative_width(split.n_items), cfg.cooccurrence_content_fade

    def score(users: np.ndarray) -> np.ndarray:
        vecs = np.stack([user_vector(q, by_user[u], rank=rank, fade=fade) for u in users])
        return vecs @ q.T + bias[None, :]

    return score


def train_cooccurrence(
    overrides: dict[str, Any] | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
    save: bool = True,
) -> CooccurrenceRun:
    """Release, build, evaluate (the pooled on-device ranking) and checkpoint the model."""
    start = time.perf_counter()
    cfg = resolve_config({}, overrides)
    dataset, split = load_split(cfg.data)
    if split.n_items > MAX_ITEMS:
        raise ValueError(
            f"the co-occurrence model keeps a dense {split.n_items} x {split.n_items} "
            f"statistic per client; it supports at most {MAX_ITEMS} items"
        )
    run_dir = Path(cfg.output.output_dir) / cfg.output.run_name
    if save and (run_dir / "LATEST").exists():
        raise ConfigError(
            f"{run_dir} already holds a co-occurrence release: releasing the same users again "
            "would spend their privacy budget twice; serve it, or pick a new run-name"
        )
    survivors = None
    if cfg.privacy.user_dp == "secagg":
        survivors = noise_survivors(cfg.privacy, split.n_users)
    plan = plan_release(cfg.privacy, cfg.cooccurrence, split.n_users, survivors=survivors)
    logger.info(
        "co-occurrence release: %d clients, user-dp %s, σ on the sum %.3f, each client adds "
        "%.4f, ε %s",
        split.n_users,
        plan.placement,
        plan.noise_multiplier,
        plan.client_std,
        "none (no noise)" if plan.epsilon is None else f"{plan.epsilon:.3f} at δ {plan.delta:.3g}",
    )
    released = released_sum(cfg, split, plan, progress=progress)
    tensors = model_of_release(cfg, released, split.n_items, dataset.items.texts)
    test = evaluate_model(
        scores_of(tensors, split, cfg.cooccurrence), split, k=10, target="test", seed=cfg.data.seed
    )
    if save:
        save_catalog(run_dir, dataset.items)
        save_checkpoint(
            run_dir,
            round=1,
            tensors=tensors,
            run_name=cfg.output.run_name,
            kind=KIND,
            config=cfg.to_run_config(),
            metrics={f"test/{k}": v for k, v in test.items()},
            history=[{"round": 1, "release": plan.to_dict()}],
            privacy=None,
            user_privacy=release_report(plan, reproducible_noise=cfg.privacy.reproducible_noise),
        )
    seconds = time.perf_counter() - start
    logger.info("test NDCG@10 %.4f (%.0f s)", test["ndcg@10_full"], seconds)
    return CooccurrenceRun(
        run_dir=run_dir,
        plan=plan,
        tensors=tensors,
        test=test,
        seconds=seconds,
        bytes_per_client=4 * vector_size(split.n_items),
    )
