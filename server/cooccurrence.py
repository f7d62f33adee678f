"""The server's side of the private co-occurrence model: from the released sum to a model.

The server holds only the sum of the clients' vectors (under SecAgg+ it never sees one
alone); under ``central`` placement it adds the noise here. Everything after the sum is
post-processing of a DP release and costs no privacy (:func:`release_over_flower` is the
release as a Flower run, ``model = cooccurrence``; the single-process driver is
:mod:`fedrec.simulation.cooccurrence`):

1. the sum becomes the symmetric co-occurrence (Gram) matrix;
2. its top eigenpairs become the collaborative part of the item factors
   (:func:`fedrec.shared.models.cooccurrence.spectral_factors`, scaled so the top
   eigenvalue counts 1; or, with ``cooccurrence-item-model = ease``, the full-rank
   :func:`~fedrec.shared.models.cooccurrence.ease_factors`), served like any MF item table
   with zero biases: a new or on-device user is the mean of its items' factors;
3. with text towers on, each item's factor also gets a content part, its *public* text
   embedding (centred, unit norm) times ``sqrt(content-weight)``: a user's score then adds
   ``content-weight`` times the mean text similarity of its items to the candidate, which
   is what keeps a Star Wars fan's list science fiction where the noisy co-occurrence alone
   would drift to what is popular;
4. and a linear user head maps free text into the same space: its collaborative rows are a
   ridge fit from the item embeddings to the collaborative part, its content rows the same
   centring and scaling as the items'.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from flwr.app import ConfigRecord, Message, RecordDict
from flwr.app.message_type import MessageType
from flwr.serverapp import Grid

from fedrec.server.messaging import send_and_receive
from fedrec.server.secagg import NOISE_MARGIN, noise_survivors, secure_sum
from fedrec.shared import protocol as key
from fedrec.shared.checkpoint import run_id, save_catalog, save_checkpoint
from fedrec.shared.config import CooccurrenceConfig, FedRecConfig
from fedrec.shared.data import ItemCatalog, catalog_version, load_catalog
from fedrec.shared.models.cooccurrence import (
    ITEM_PRIOR,
    ease_factors,
    gram_from_vector,
    spectral_factors,
    vector_row_sums,
    vector_size,
)
from fedrec.shared.models.factory import item_text_embeddings
from fedrec.shared.models.initial import USER_HEAD_B, USER_HEAD_W
from fedrec.shared.privacy import DPRandom, dp_random
from fedrec.shared.privacy.cooccurrence import ReleasePlan, plan_release, release_report
from fedrec.shared.serialization import arrays_to_numpy, numpy_to_arrays

logger = logging.getLogger(__name__)

RELEASE_TENSOR = "cooccurrence"

# Ridge penalty of the text head: the embeddings are unit-norm and there are far more items
# than embedding dimensions, so a small penalty suffices to keep the fit stable.
TEXT_HEAD_L2 = 1.0


def noised_sum(total: np.ndarray, plan: ReleasePlan, rng: DPRandom | None) -> np.ndarray:
    """The released sum: ``total`` plus the server's noise (``central`` placement only)."""
    if plan.server_std <= 0:
        return np.asarray(total, np.float64)
    if rng is None:
        raise ValueError("central noise needs a DP random source")
    return np.asarray(total, np.float64) + rng.normal(np.shape(total), plan.server_std)


def release_sum(cfg: FedRecConfig, total: np.ndarray, plan: ReleasePlan) -> np.ndarray:
    """The sum the server publishes: ``total`` plus its own noise where it adds any."""
    rng = None
    if plan.server_std > 0:
        rng = dp_random(
            reproducible=cfg.privacy.reproducible_noise,
            seeds=(cfg.data.seed, -1),
            what="co-occurrence release",
        )
    return noised_sum(total, plan, rng)


def release_clipping(plan: ReleasePlan) -> float:
    """SecAgg+'s per-value range for the release's shares.

    A term's entries are at most 1 (the diagonal of a one-item user): the range is that plus
    NOISE_MARGIN std of a share, so SecAgg+ never cuts a value in practice.
    """
    return 1.0 + NOISE_MARGIN * plan.client_std


def model_of_release(
    cfg: FedRecConfig, released: np.ndarray, n_items: int, texts: list[str]
) -> dict[str, np.ndarray]:
    """The servable tensors of a released sum, with the text part when towers are on."""
    emb = item_text_embeddings(cfg, texts) if cfg.text.text_tower != "off" else None
    return item_tensors(
        collaborative_factors(released, n_items, cfg.cooccurrence),
        item_embeddings=emb,
        content_weight=cfg.cooccurrence.cooccurrence_content_weight,
        popularity=vector_row_sums(released, n_items),
    )


def collaborative_factors(
    released: np.ndarray, n_items: int, cfg: CooccurrenceConfig
) -> np.ndarray:
    """The item factors of a released sum by ``cooccurrence-item-model``, top eigenvalue 1."""
    gram = gram_from_vector(released, n_items)
    if cfg.cooccurrence_item_model == "ease":
        return ease_factors(gram, cfg.cooccurrence_l2, cfg.cooccurrence_dropout)
    factors = spectral_factors(gram, cfg.collaborative_width(n_items))
    top = float(np.linalg.norm(factors[:, 0]))  # sqrt of the top eigenvalue
    return factors / top if top > 0 else factors


def ridge_head(
    target: np.ndarray, item_embeddings: np.ndarray, l2: float = TEXT_HEAD_L2
) -> tuple[np.ndarray, np.ndarray]:
    """``W, b`` with ``W e + b`` the ridge fit of ``target`` rows from the item embeddings."""
    emb = np.asarray(item_embeddings, np.float64)
    target = np.asarray(target, np.float64)
    if emb.shape[0] != target.shape[0]:
        raise ValueError(f"{emb.shape[0]} item embeddings for {target.shape[0]} item factors")
    mean_e, mean_t = emb.mean(axis=0), target.mean(axis=0)
    e, t = emb - mean_e, target - mean_t
    weight = np.linalg.solve(e.T @ e + l2 * np.eye(e.shape[1]), e.T @ t).T  # [d, 384]
    return weight, mean_t - weight @ mean_e


def item_tensors(
    collab: np.ndarray,
    *,
    item_embeddings: np.ndarray | None = None,
    content_weight: float = 0.0,
    popularity: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """The servable tensors of collaborative factors: item factors, zero biases, text head.

    Without ``item_embeddings`` the factors are the collaborative part alone and there is
    no text head. With ``popularity`` (the release's row sums: user counts) and text towers,
    new users also get ``item_prior``, its log (free text: :mod:`fedrec.server.serving.intent`;
    liked items: :mod:`fedrec.server.serving.scoring`); noise can make an entry negative,
    which counts as none.
    """
    n_items = collab.shape[0]
    out = {"item_bias": np.zeros(n_items, np.float32)}
    if popularity is not None and item_embeddings is not None:
        out[ITEM_PRIOR] = np.log1p(np.maximum(popularity, 0.0)).astype(np.float32)
    if item_embeddings is None:
        out["item_factors"] = collab.astype(np.float32)
        return out
    emb = np.asarray(item_embeddings, np.float64)
    mean = emb.mean(axis=0)
    centred = emb - mean
    norms = np.linalg.norm(centred, axis=1)
    norms[norms == 0] = 1.0
    root = float(np.sqrt(max(content_weight, 0.0)))
    content = root * centred / norms[:, None]
    out["item_factors"] = np.hstack([collab, content]).astype(np.float32)
    w_collab, b_collab = ridge_head(collab, emb)
    # Free text: the same centring; its norm is unknown in advance, so the items' mean norm.
    scale = root / float(norms.mean())
    w_content = scale * np.eye(emb.shape[1])
    out[USER_HEAD_W] = np.vstack([w_collab, w_content]).astype(np.float32)
    out[USER_HEAD_B] = np.concatenate([b_collab, -scale * mean]).astype(np.float32)
    return out


def _messages(node_ids: list[int], config: dict[str, Any], start: int, end: int) -> list[Message]:
    # Placeholder: SecAgg+ sums whatever tensor comes back under this name.
    arrays = numpy_to_arrays({RELEASE_TENSOR: np.zeros(1, np.float32)})
    chunk = ConfigRecord({**config, key.CHUNK_START: start, key.CHUNK_END: end})
    return [
        Message(
            content=RecordDict({"arrays": arrays, "config": chunk}),
            dst_node_id=nid,
            message_type=MessageType.TRAIN,
        )
        for nid in node_ids
    ]


def _plain_sum(replies: list[Message], length: int) -> tuple[np.ndarray, int]:
    """The sum of the replies that arrived whole (under central/local/off placement)."""
    total, arrived = np.zeros(length, np.float64), 0
    for reply in replies:
        if reply.has_error():
            logger.warning("a client failed its slice of the release: %s", reply.error.reason)
            continue
        chunk = arrays_to_numpy(reply.content.array_records["arrays"]).get(RELEASE_TENSOR)
        if chunk is None or chunk.shape != (length,) or not np.isfinite(chunk).all():
            logger.warning("a client sent a malformed slice of the release; left out")
            continue
        total += chunk
        arrived += 1
    return total, arrived


@dataclass(frozen=True)
class ReleaseRound:
    """What the server fixed before asking for any slice: who, how noised, which slices."""

    nodes: list[int]
    plan: ReleasePlan
    survivors: int | None  # secagg: the fewest survivors SecAgg+ unmasks for
    config: dict[str, Any]  # what every slice's message carries
    size: int  # entries of the whole release
    step: int  # entries per slice (the last may have fewer)

    @property
    def slices(self) -> list[tuple[int, int]]:
        """Each slice's entries ``[start, end)``, in the order they are asked for."""
        return [(a, min(a + self.step, self.size)) for a in range(0, self.size, self.step)]


@dataclass(frozen=True)
class SliceSum:
    """One slice as the server received it: its sum, who is in it, what it cost."""

    number: int  # from 1
    start: int
    end: int
    total: np.ndarray
    arrived: int
    seconds: float
    stages: list[dict[str, Any]]  # under SecAgg+: each stage's time and bytes (StageCost)

    def cost(self) -> dict[str, Any]:
        """The slice's row in the release's history (everything but the sum)."""
        return {
            "slice": self.number,
            "entries": self.end - self.start,
            "clients": self.arrived,
            "seconds": self.seconds,
            "stages": self.stages,
        }


def plan_over_flower(
    grid: Grid, cfg: FedRecConfig, catalog: ItemCatalog, identity: str
) -> ReleaseRound:
    """Wait for the federation, then fix the release's clients, noise and slices."""
    wanted = cfg.federation.min_available_nodes or cfg.federation.min_train_nodes
    while len(list(grid.get_node_ids())) < wanted:
        time.sleep(0.05)
    nodes = sorted(grid.get_node_ids())
    privacy = cfg.privacy
    survivors = noise_survivors(privacy, len(nodes)) if privacy.user_dp == "secagg" else None
    plan = plan_release(privacy, cfg.cooccurrence, len(nodes), survivors=survivors)
    config: dict[str, Any] = {
        key.RUN_ID: identity,
        key.TASK: key.TASK_COOCCURRENCE,
        key.CATALOG_SHA256: catalog_version(catalog),
    }
    if plan.delta is not None:
        config[key.USER_DELTA] = plan.delta
    size, step = vector_size(len(catalog)), cfg.cooccurrence.cooccurrence_chunk_size
    return ReleaseRound(nodes, plan, survivors, config, size, step)


def release_slices(grid: Grid, cfg: FedRecConfig, release: ReleaseRound) -> Iterator[SliceSum]:
    """Ask every client for each slice in turn; each slice's sum as it arrives.

    Under ``user-dp = secagg`` each slice is one SecAgg+ round. A slice that too few clients
    answered ends the release with an error: an incomplete release is never modelled.
    """
    privacy, nodes, slices = cfg.privacy, release.nodes, release.slices
    for number, (start, end) in enumerate(slices, 1):
        started = time.perf_counter()
        messages = _messages(nodes, release.config, start, end)
        stages: list[dict[str, Any]] = []
        if privacy.user_dp == "secagg":
            secure = secure_sum(
                grid,
                messages,
                server_round=number,
                privacy=privacy,
                timeout=cfg.federation.round_timeout,
                clipping=release_clipping(release.plan),
                max_in_flight=cfg.federation.max_in_flight,
            )
            if secure.total is None:
                raise RuntimeError(
                    f"slice {number}: SecAgg+ halted (fewer than {release.survivors} clients "
                    "survived); the release is incomplete and no model is written"
                )
            total, arrived, stages = secure.total[RELEASE_TENSOR], secure.survivors, secure.stages
        else:
            replies = send_and_receive(
                grid,
                messages,
                timeout=cfg.federation.round_timeout,
                max_in_flight=cfg.federation.max_in_flight,
            )
            total, arrived = _plain_sum(replies, end - start)
        if arrived < max(cfg.federation.min_train_nodes, 1):
            raise RuntimeError(
                f"slice {number}: only {arrived} of {len(nodes)} clients answered (fewer than "
                "min-train-nodes); the release is incomplete and no model is written"
            )
        seconds = time.perf_counter() - started
        logger.info(
            "slice %d/%d: %d of %d clients, %.1f s",
            number,
            len(slices),
            arrived,
            len(nodes),
            seconds,
        )
        yield SliceSum(number, start, end, total, arrived, seconds, stages)


def release_over_flower(grid: Grid, cfg: FedRecConfig) -> Path:
    """The co-occurrence release as a Flower run: slices, each summed (under SecAgg+).

    Every connected client is asked for each slice of ``cooccurrence-chunk-size`` entries
    (:func:`release_slices`); under ``user-dp = secagg`` each slice is one SecAgg+ round, so
    the server only ever holds the sum. The model is built and checkpointed as by the
    single-process driver; the history records each slice's time (and SecAgg+ stages').
    """
    catalog = load_catalog(cfg.data)  # the public catalogue only
    n_items = len(catalog)
    run_dir = Path(cfg.output.output_dir) / cfg.output.run_name
    if (run_dir / "LATEST").exists():
        # One release per run: asking again would spend the budget twice (and the clients,
        # which note what they released, refuse).
        logger.info("%s already holds its co-occurrence release; nothing to do", run_dir)
        return run_dir
    save_catalog(run_dir, catalog)
    release = plan_over_flower(grid, cfg, catalog, run_id(run_dir))
    plan, nodes = release.plan, release.nodes
    logger.info(
        "co-occurrence release over Flower: %d clients, %d entries in %d slice(s), user-dp %s",
        len(nodes),
        release.size,
        len(release.slices),
        cfg.privacy.user_dp,
    )
    total = np.zeros(release.size, np.float64)
    fewest, costs = len(nodes), []
    for part in release_slices(grid, cfg, release):
        total[part.start : part.end] = part.total
        fewest = min(fewest, part.arrived)
        costs.append(part.cost())
    tensors = model_of_release(cfg, release_sum(cfg, total, plan), n_items, catalog.texts)
    save_checkpoint(
        run_dir,
        round=1,
        tensors=tensors,
        run_name=cfg.output.run_name,
        kind="cooccurrence",
        config=cfg.to_run_config(),
        metrics={"clients": float(len(nodes)), "fewest-clients-per-slice": float(fewest)},
        history=[
            {
                "round": 1,
                "release": plan.to_dict(),
                "slices": len(costs),
                "slice_costs": costs,
            }
        ],
        privacy=None,
        user_privacy=release_report(plan, reproducible_noise=cfg.privacy.reproducible_noise),
    )
    logger.info("co-occurrence model written to %s", run_dir)
    return run_dir
