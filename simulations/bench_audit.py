"""``fedrec bench privacy-audit``: empirical lower bounds on ε, next to the accounted ε.

One training round with canaries (:mod:`fedrec.shared.privacy.audit`), run by the project's
own code paths, attacked with what the server sees:

- **Record level** (DP-SGD on every client). Each canary client gets one canary record (an
  item it never rated), included with probability 1/2; every client trains round 1 with
  ``train_local`` from the public initial model and its public initial user factor. The
  attackers know every public seed, the initial factors and every record but the canary:
  ``direction`` (the canary row's update projected on the user's initial factor),
  ``noise-scale`` (the update's noise level against the client's known record count) and
  ``replay`` (train again with the public seeds, with and without the canary, and see which
  one the update matches).
- **User level** (central, SecAgg+ shares, local). Canary clients send a worst-case update
  (the clip bound on one coordinate of their own), or nothing, among real clients' updates
  of one round; the attacker reads the canary's coordinate of what it sees (the noised sum,
  or under local noise the client's own reply).
- **The co-occurrence release** (central, SecAgg+): canary users among the data set's
  training users in the one release of the private co-occurrence model, its own broken
  controls included (:mod:`fedrec.simulations.bench_audit_cooccurrence`).

Controls are deliberately broken mechanisms, run only here, to show the audit can fail:
``count-normalised`` (the noised sum divided by the client's own record count -- fedrec's
mechanism before this audit existed), ``public-seed`` (noise, batches and negatives from the
public run seed) and, at user level, ``noise-too-small`` (a tenth of the accounted noise).
A control must be caught (lower bound above its claim); the product's rows must not be.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fedrec.client.dataview import ClientData, client_seed, load_client_data
from fedrec.client.task import build_model
from fedrec.server.secagg import noise_survivors, unmasked_secure_sum
from fedrec.server.user_dp import CentralNoise, central_noise_for
from fedrec.shared.config import FedRecConfig, PrivacyConfig, resolve_config
from fedrec.shared.data import load_split
from fedrec.shared.models.initial import init_global, init_user_factors
from fedrec.shared.privacy import (
    SecureRandom,
    account,
    dp_plan,
    epsilon_of,
    noise_std,
    privatize,
    resolve_delta,
)
from fedrec.shared.privacy.audit import one_run_audit
from fedrec.shared.privacy.audit import verdict as audit_verdict
from fedrec.shared.training import train_local
from fedrec.simulations.bench_audit_cooccurrence import cooccurrence_arm
from fedrec.simulations.measure import machine_stamp
from fedrec.simulations.report import save

logger = logging.getLogger(__name__)

Arrays = dict[str, np.ndarray]
RECORD_CONTROLS = ("count-normalised", "public-seed")
USER_PLACEMENTS = ("central", "secagg", "local")
CONFIDENCE = 0.95
# The δ the user-level audit tests the privacy profile at. The run's own δ (1/N^1.1) is large
# for N in the hundreds, and the one-run bound's δ term grows with the canaries: at that δ
# even a mechanism with no noise could not be shown to exceed its claim. A Gaussian mechanism
# is (ε(δ'), δ')-DP for every δ', so the claim is restated at this δ' by the accountant.
USER_AUDIT_DELTA = 1e-6


def _with_canary(data: ClientData, item: int | None) -> ClientData:
    if item is None:
        return data
    return replace(
        data,
        train_users=np.append(data.train_users, 0),
        train_items=np.append(data.train_items, item),
    )


def _local_update(
    cfg: FedRecConfig, data: ClientData, shared: Arrays, pid: int, privacy: PrivacyConfig
) -> Arrays:
    """Round 1 of ``pid``'s local training from the public start: the update it sends."""
    seed = client_seed(cfg, pid)
    model = build_model(cfg, data, shared, None, seed=seed)
    train_local(
        model,
        data.train_users,
        data.train_items,
        train=cfg.train,
        privacy=privacy,
        seed=seed * 1_000_003 + 1,
        learning_rate=cfg.train.lr_at(1),
    )
    updated = model.get_global()
    return {k: updated[k] - shared[k] for k in shared}


def _robust_std(delta: Arrays) -> float:
    flat = np.concatenate([np.ravel(v) for v in delta.values()]).astype(np.float64)
    return float(np.median(np.abs(flat - np.median(flat))) / 0.6745)


def _distance(a: Arrays, b: Arrays) -> float:
    return float(np.sqrt(sum(np.sum((a[k] - b[k]) ** 2, dtype=np.float64) for k in a)))


def record_audit(
    cfg: FedRecConfig,
    *,
    canaries: int,
    control: str | None = None,
    seed: int = 0,
    progress: Callable[[str], None] = logger.info,
) -> dict[str, Any]:
    """Audit record-level DP-SGD (or a broken ``control``) with ``canaries`` canary clients."""
    if not cfg.privacy.dp_enabled:
        raise ValueError("record-level audit needs dp-enabled=true")
    _, split = load_split(cfg.data)
    n_clients = split.n_users
    shared = init_global(cfg, split.n_items)
    rng = np.random.default_rng([seed, 17])  # the auditor's choices, not the mechanism's
    pids = sorted(rng.choice(n_clients, min(canaries, n_clients), replace=False).tolist())
    included = rng.random(len(pids)) < 0.5
    public = replace(cfg.privacy, reproducible_noise=True)  # what the replay attacker runs
    scores: dict[str, list[float]] = {"direction": [], "noise-scale": [], "replay": []}
    t0 = time.perf_counter()
    for j, pid in enumerate(pids):
        data = load_client_data(cfg, pid, n_clients)
        item = int(rng.choice(np.setdiff1d(np.arange(split.n_items), data.seen[0])))
        n_without = len(data.train_items)
        mechanism = cfg.privacy
        if control == "count-normalised":
            # Opacus' default: the noised sum divided by the client's own record count.
            mechanism = replace(mechanism, dp_batch_size=n_without + int(included[j]))
        elif control == "public-seed":
            mechanism = public
        elif control is not None:
            raise ValueError(f"unknown record-level control {control!r}")
        seen_update = _local_update(
            cfg, _with_canary(data, item if included[j] else None), shared, pid, mechanism
        )
        p0 = init_user_factors(1, cfg.train.embedding_dim, seed=client_seed(cfg, pid))[0]
        scores["direction"].append(float(seen_update["item_factors"][item] @ p0))
        # With a count normaliser the noise std is k / n: an extra record makes it smaller.
        scores["noise-scale"].append(-float(np.log(_robust_std(seen_update))) - np.log(n_without))
        # Replay with every public seed: exact for a mechanism whose randomness is public.
        without = _local_update(cfg, data, shared, pid, public)
        with_it = _local_update(cfg, _with_canary(data, item), shared, pid, public)
        scores["replay"].append(_distance(seen_update, without) - _distance(seen_update, with_it))
        if (j + 1) % 100 == 0:
            progress(f"record audit ({control or 'fedrec'}): {j + 1}/{len(pids)} canaries")
    result = one_run_audit(scores, included, delta=cfg.privacy.dp_delta, confidence=CONFIDENCE)
    plan = dp_plan(cfg.train, cfg.privacy)
    sigma, q, steps = plan
    return {
        "level": "record",
        "placement": "client DP-SGD",
        "mechanism": control or "fedrec",
        "claimed_epsilon": epsilon_of([plan], cfg.privacy.dp_delta),
        "claimed_epsilon_run": epsilon_of(
            [(sigma, q, steps * cfg.federation.num_rounds)], cfg.privacy.dp_delta
        ),
        "delta": cfg.privacy.dp_delta,
        "audit": result.to_dict(),
        "seconds": time.perf_counter() - t0,
    }


def _background_updates(cfg: FedRecConfig, n: int, seed: int) -> tuple[list[Arrays], Arrays]:
    """``n`` real clients' round-1 updates (no record-level DP), and the public start."""
    _, split = load_split(cfg.data)
    shared = init_global(cfg, split.n_items)
    nodp = replace(cfg.privacy, dp_enabled=False)
    rng = np.random.default_rng([seed, 23])
    pids = rng.choice(split.n_users, min(n, split.n_users), replace=False).tolist()
    updates = [
        _local_update(cfg, load_client_data(cfg, pid, split.n_users), shared, pid, nodp)
        for pid in pids
    ]
    return updates, shared


def user_audit(
    cfg: FedRecConfig,
    *,
    placement: str,
    canaries: int,
    background: Sequence[Arrays],
    shared: Arrays,
    control: str | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Audit user-level DP at ``placement`` with Dirac canary clients among ``background``."""
    if placement not in USER_PLACEMENTS:
        raise ValueError(f"placement must be one of {USER_PLACEMENTS}, got {placement!r}")
    privacy = replace(cfg.privacy, user_dp=placement)
    clip, sigma = privacy.user_clip, privacy.user_noise_multiplier
    if control == "noise-too-small":
        privacy = replace(privacy, user_noise_multiplier=sigma / 10)
    elif control is not None:
        raise ValueError(f"unknown user-level control {control!r}")
    run_cfg = replace(cfg, privacy=privacy)
    size = sum(int(np.size(v)) for v in shared.values())
    if canaries > size:
        raise ValueError(f"{canaries} canaries need as many coordinates, the model has {size}")
    rng = np.random.default_rng([seed, 29])
    coords = rng.choice(int(np.size(shared["item_factors"])), canaries, replace=False)
    included = rng.random(canaries) < 0.5
    canary_updates = []
    for c, inc in zip(coords, included, strict=True):
        update = {k: np.zeros_like(v) for k, v in shared.items()}
        if inc:
            update["item_factors"].ravel()[c] = clip  # norm C: the most one user can move
        canary_updates.append(update)
    everyone = list(background) + canary_updates
    t0 = time.perf_counter()
    if placement == "central":
        noise: CentralNoise = central_noise_for(run_cfg)
        seen = [noise.noised_sum(everyone)]
    else:
        survivors = noise_survivors(privacy, len(everyone)) if placement == "secagg" else None
        std = noise_std(
            placement,
            privacy.user_noise_multiplier,
            clip,
            survivors=survivors,
            colluders=privacy.secagg_max_colluders,
        )
        sent = [privatize(u, clip, std, SecureRandom())[0] for u in everyone]
        if placement == "secagg":
            seen = [unmasked_secure_sum(sent, privacy)]
        else:
            seen = sent[len(background) :]  # the attacker reads each canary's own reply
    if placement == "local":
        values = [float(s["item_factors"].ravel()[c]) for s, c in zip(seen, coords, strict=True)]
    else:
        values = [float(seen[0]["item_factors"].ravel()[c]) for c in coords]
    delta = USER_AUDIT_DELTA
    result = one_run_audit({"coordinate": values}, included, delta=delta, confidence=CONFIDENCE)
    claimed = account([(sigma, 1.0, 1)], delta, cfg.privacy.user_accountant).epsilon
    return {
        "level": "user",
        "placement": placement,
        "mechanism": control or "fedrec",
        "claimed_epsilon": claimed,
        "claimed_epsilon_run": account(
            [(sigma, 1.0, cfg.federation.num_rounds)], delta, cfg.privacy.user_accountant
        ).epsilon,
        "delta": delta,
        "run_delta": resolve_delta(cfg.privacy, len(everyone)),
        "clients": len(everyone),
        "audit": result.to_dict(),
        "seconds": time.perf_counter() - t0,
    }


def verdict(row: dict[str, Any]) -> str:
    """A row's verdict (:func:`fedrec.shared.privacy.audit.verdict`): the product or a control."""
    audit = row["audit"]
    return audit_verdict(
        audit["epsilon_lower_bound"],
        row["claimed_epsilon"],
        audit["power"],
        control=row["mechanism"] != "fedrec",
    )


def _rows(
    cfg: FedRecConfig,
    record_canaries: int,
    user_canaries: int,
    background: int,
    placements: Sequence[str],
    controls: bool,
    seed: int,
    sigma_scales: Sequence[float],
) -> list[dict[str, Any]]:
    rows = []
    for scale in sigma_scales:
        # A larger σ lowers the claim below what this many canaries can certify, so the
        # controls show the audit's power with the same code and attackers.
        scaled = cfg.replace(**{"dp-noise-multiplier": cfg.privacy.dp_noise_multiplier * scale})
        for control in (None, *(RECORD_CONTROLS if controls else ())):
            row = record_audit(scaled, canaries=record_canaries, control=control, seed=seed)
            row["noise_multiplier"] = scaled.privacy.dp_noise_multiplier
            rows.append(row)
            logger.info("%s at σ %g: %s", row["mechanism"], row["noise_multiplier"], verdict(row))
    if placements:
        updates, shared = _background_updates(cfg, background, seed)
        for placement in placements:
            for control in (None, *(("noise-too-small",) if controls else ())):
                row = user_audit(
                    cfg,
                    placement=placement,
                    canaries=user_canaries,
                    background=updates,
                    shared=shared,
                    control=control,
                    seed=seed,
                )
                row["noise_multiplier"] = cfg.privacy.user_noise_multiplier
                rows.append(row)
    for row in rows:
        row["verdict"] = verdict(row)
    return rows


def run_privacy_audit(
    *,
    overrides: dict[str, Any] | None,
    output_dir: Path,
    name: str = "privacy-audit",
    record_canaries: int = 1000,
    user_canaries: int = 1000,
    background: int = 200,
    placements: Sequence[str] = USER_PLACEMENTS,
    controls: bool = True,
    seed: int = 0,
    sigma_scales: Sequence[float] = (1.0,),
    cooccurrence: Sequence[str] = (),
    cooccurrence_epsilons: Sequence[float] = (4.0, 1.0),
    cooccurrence_canaries: int = 5000,
    cooccurrence_canary_size: int = 5,
    cooccurrence_items: int | None = 500,
    only_cooccurrence: bool = False,
) -> dict[str, Any]:
    """Every audit row, written to ``<output_dir>/<name>.json`` and ``.md``.

    ``cooccurrence`` lists the placements of the co-occurrence release's audit
    (:mod:`fedrec.simulations.bench_audit_cooccurrence`); ``only_cooccurrence`` runs that
    arm alone and puts it into the existing ``<name>.json``, whose other rows stay as they
    were measured.
    """
    cfg = resolve_config({}, {**(overrides or {}), "dp-enabled": True})

    def arm() -> dict[str, Any]:
        return cooccurrence_arm(
            cfg,
            placements=cooccurrence,
            epsilons=cooccurrence_epsilons,
            canaries=cooccurrence_canaries,
            canary_size=cooccurrence_canary_size,
            items=cooccurrence_items,
            controls=controls,
            seed=seed,
        )

    if only_cooccurrence:
        source = output_dir / f"{name}.json"
        if not source.exists():
            raise ValueError(f"{source} not found: run the whole audit first")
        if not cooccurrence:
            raise ValueError("only_cooccurrence needs at least one co-occurrence placement")
        kept: dict[str, Any] = json.loads(source.read_text())
        kept["cooccurrence"] = arm()
        save(kept, output_dir, name, kind="privacy-audit")
        return kept
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one small client at a time: threads only add overhead
    try:
        rows = _rows(
            cfg,
            record_canaries,
            user_canaries,
            background,
            placements,
            controls,
            seed,
            sigma_scales,
        )
    finally:
        torch.set_num_threads(threads)
    result = {
        "benchmark": name,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "dataset": cfg.data.dataset,
        "settings": cfg.to_run_config(),
        "audit": {
            "method": "one-run canary audit (Steinke, Nasr & Jagielski 2023)",
            "confidence": CONFIDENCE,
            "record_canaries": record_canaries,
            "user_canaries": user_canaries,
            "background_clients": background if placements else 0,
            "user_delta": USER_AUDIT_DELTA,
            "seed": seed,
            "record_sigma_scales": list(sigma_scales),
        },
        "machine": machine_stamp(),
        "rows": rows,
    }
    if cooccurrence:
        result["cooccurrence"] = arm()
    save(result, output_dir, name, kind="privacy-audit")
    return result
