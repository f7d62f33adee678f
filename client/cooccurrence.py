"""The client's side of the private co-occurrence release: its term plus its noise share.

What leaves the client is :func:`cooccurrence_share`'s vector and nothing else: its
training items' co-occurrence (L2 norm 1, :mod:`fedrec.shared.models.cooccurrence`) plus
the noise the release plan gives each client (:mod:`fedrec.shared.privacy.cooccurrence`),
drawn from the privacy package's CSPRNG unless ``reproducible-noise`` asked otherwise.
Validation and test items never enter it.

Over Flower the release comes in slices (:func:`release_chunk`, one message or SecAgg+
round each, answered by :func:`release_reply`); the client notes each slice it released
and never releases one twice.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from flwr.app import ConfigRecord, Message, MetricRecord, RecordDict

from fedrec.client.dataview import ClientData, client_seed
from fedrec.client.message_config import config_int, user_delta_of
from fedrec.client.state import ClientState, ClientStateStore
from fedrec.shared import protocol as key
from fedrec.shared.config import FedRecConfig
from fedrec.shared.models.cooccurrence import (
    contribution,
    contribution_entries,
    rows_of,
    vector_size,
)
from fedrec.shared.privacy import DPRandom, dp_random
from fedrec.shared.privacy.cooccurrence import plan_release
from fedrec.shared.serialization import arrays_to_numpy, numpy_to_arrays


def cooccurrence_share(
    items: np.ndarray, n_items: int, std: float, rng: DPRandom | None
) -> np.ndarray:
    """The vector one client sends: its co-occurrence term plus ``N(0, std²)`` per entry."""
    vector = contribution(items, n_items)
    if std > 0:
        if rng is None:
            raise ValueError("a noised share needs a DP random source")
        vector += rng.normal(vector.shape, std)
    return vector


class ReleaseRefused(ValueError):
    """A request for entries this client already released in this run."""


def users_terms(data: ClientData, start: int, end: int) -> np.ndarray:
    """Entries ``[start, end)`` of the sum of this client's users' terms (each of L2 norm 1).

    Built from the pairs of each user's items that fall in the slice's rows
    (:func:`contribution_entries`): a slice costs what the client's pairs in it cost, not a
    vector of the whole catalogue's pairs per user and slice.
    """
    rows = rows_of(start, end, data.n_items)
    order = np.argsort(data.train_users, kind="stable")
    bounds = np.searchsorted(data.train_users[order], np.arange(len(data.users) + 1))
    positions, values = [np.zeros(0, np.int64)], [np.zeros(0, np.float64)]
    for local in range(len(data.users)):
        items = data.train_items[order[bounds[local] : bounds[local + 1]]]
        pos, val = contribution_entries(items, data.n_items, rows)
        lo, hi = np.searchsorted(pos, [start, end])
        positions.append(pos[lo:hi] - start)
        values.append(val[lo:hi])
    return np.bincount(
        np.concatenate(positions), weights=np.concatenate(values), minlength=end - start
    ).astype(np.float64)


def record_release(store: ClientStateStore, start: int, end: int) -> None:
    """Note entries ``[start, end)`` as released; refuse if any of them already was.

    A second release of the same entries with fresh noise would let the server average the
    noise away, so a client releases each entry at most once per run. The note is part of
    the client's sealed ledger (:mod:`fedrec.client.state`), written durably before the
    reply: a crash in between costs the entries, never the guarantee, and a deleted or
    edited note is refused like any other ledger.
    """
    state = store.load() or ClientState(user_factors=np.zeros((0, 0), np.float32))
    for a, b in state.released:
        if start < b and a < end:
            raise ReleaseRefused(
                f"entries [{start}, {end}) overlap [{a}, {b}), already released in this run: "
                "refusing to release them again (fresh noise on a repeat would average away)"
            )
    store.save(replace(state, released=[*state.released, (int(start), int(end))]))


def release_chunk(
    cfg: FedRecConfig,
    data: ClientData,
    store: ClientStateStore,
    *,
    start: int,
    end: int,
    n_clients: int,
    survivors: int | None,
    delta: float | None,
    seeds: tuple[int, ...],
) -> np.ndarray:
    """Entries ``[start, end)`` of this client's share: its users' terms plus its noise.

    The client sizes its noise itself, from its own settings (ε, placement, colluders) and
    the protocol's threshold, so a server cannot talk it into less noise.
    """
    size = vector_size(data.n_items)
    if not 0 <= start < end <= size:
        raise ValueError(f"entries [{start}, {end}) are outside the release's {size}")
    if cfg.privacy.user_dp == "local":
        survivors = None
    plan = plan_release(
        cfg.privacy, cfg.cooccurrence, max(n_clients, 1), survivors=survivors, delta=delta
    )
    record_release(store, start, end)
    chunk = users_terms(data, start, end)
    if plan.client_std > 0:
        rng = dp_random(
            reproducible=cfg.privacy.reproducible_noise,
            seeds=(*seeds, start),
            what="co-occurrence release",
        )
        chunk = chunk + rng.normal(chunk.shape, plan.client_std)
    return chunk


def release_reply(
    msg: Message,
    cfg: FedRecConfig,
    data: ClientData,
    store: ClientStateStore,
    *,
    config: ConfigRecord,
    partition_id: int,
    n_clients: int,
    survivors: int | None,
) -> Message:
    """The reply to a release message: the slice it asks for, and nothing else."""
    chunk = release_chunk(
        cfg,
        data,
        store,
        start=config_int(config, key.CHUNK_START),
        end=config_int(config, key.CHUNK_END),
        n_clients=n_clients,
        survivors=survivors,
        delta=user_delta_of(config),
        seeds=(client_seed(cfg, partition_id),),
    )
    arrays = {name: chunk for name in arrays_to_numpy(msg.content.array_records["arrays"])}
    content = RecordDict(
        {"arrays": numpy_to_arrays(arrays), "metrics": MetricRecord({key.WEIGHT: 1.0})}
    )
    return Message(content=content, reply_to=msg)
