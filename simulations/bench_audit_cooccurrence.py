"""The co-occurrence arm of ``fedrec bench privacy-audit``: canary users in the one release.

The private co-occurrence model (:mod:`fedrec.shared.privacy.cooccurrence`) is one Gaussian
mechanism on a sum over users, each term of L2 norm 1. Its audit, by the one-run method of
:mod:`fedrec.shared.privacy.audit`:

- **Canaries.** ``m`` canary users, each holding ``k`` items, no two canaries sharing a pair
  of items (so the off-diagonal entries of their terms never overlap), each in the release
  with probability 1/2. An excluded canary takes part with no items (a zero term, the same
  sum as removing it), so the federation's size, σ and the SecAgg+ threshold do not depend
  on the secret bits. The canaries' items and bits come from a seeded generator (the
  auditor's bookkeeping); every noise draw is the product's (:func:`dp_random`, a CSPRNG).
- **The release** runs through the product's functions: :func:`cooccurrence_share` per
  client, the SecAgg+ integer sum (:class:`SecureSumAccumulator`) under ``secagg``, then
  :func:`release_sum` (the server's noise under ``central``), with the plan of
  :func:`plan_release` for the claimed ε and the federation's size.
- **The attacker** is the worst case short of the noise: it knows every background user's
  items and the mechanism, subtracts their terms from the released sum and scores each
  canary by the sum of the entries of its own item pairs (``own-pairs``): no other user's
  unknown term touches them.
- **Controls**, run only here, must be caught: ``unnormalised`` (the term ``x xᵀ`` without
  the ``/ n``, whose norm grows with the user's items while σ is calibrated for 1),
  ``noise-too-small`` (a tenth of the plan's noise, on the clients and the server) and
  ``diagonal-only`` (the plan's noise on the diagonal entries only).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from itertools import combinations
from typing import Any

import numpy as np

from fedrec.client.cooccurrence import cooccurrence_share
from fedrec.server.cooccurrence import release_clipping, release_sum
from fedrec.server.secagg import SecureSumAccumulator, noise_survivors, quantization_levels
from fedrec.shared.config import FedRecConfig
from fedrec.shared.data import load_split
from fedrec.shared.models.cooccurrence import contribution, vector_size
from fedrec.shared.privacy import DPRandom, account, dp_random
from fedrec.shared.privacy.audit import one_run_audit, verdict
from fedrec.shared.privacy.cooccurrence import ReleasePlan, plan_release
from fedrec.simulations.measure import machine_stamp

logger = logging.getLogger(__name__)

PLACEMENTS = ("central", "secagg")
CONTROLS = ("unnormalised", "noise-too-small", "diagonal-only")
ATTACKER = "own-pairs"
CONFIDENCE = 0.95
# The δ the release is audited at, as for the user-level rows (bench_audit.USER_AUDIT_DELTA):
# the run's δ = 1/N^1.1 leaves a one-run bound no power, and a Gaussian mechanism holds at
# every δ, so the claim is restated at this one by the accountant.
AUDIT_DELTA = 1e-6


def training_background(cfg: FedRecConfig, items: int | None) -> tuple[list[np.ndarray], int]:
    """The data set's training users' item sets, restricted to its ``items`` most-rated items.

    ``items`` None (or at least the catalogue) keeps the whole catalogue. A smaller one keeps
    the audit's vectors (``n (n + 1) / 2`` entries per client) within a few minutes; users
    left with no items still take part, with a zero term.
    """
    _, split = load_split(cfg.data)
    by_user = split.train_items_by_user()
    if items is None or items >= split.n_items:
        return by_user, split.n_items
    if items < 2:
        raise ValueError(f"a co-occurrence audit needs at least 2 items, got {items}")
    counts = np.bincount(np.concatenate(by_user), minlength=split.n_items)
    keep = np.argsort(-counts, kind="stable")[:items]
    index = np.full(split.n_items, -1, dtype=np.int64)
    index[keep] = np.arange(items)
    return [np.sort(index[u][index[u] >= 0]) for u in by_user], items


def draw_canaries(
    n_items: int, canaries: int, size: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """``canaries`` item sets of ``size`` items, no pair of items in two of them."""
    if not 2 <= size <= n_items:
        raise ValueError(f"a canary needs 2 to {n_items} items, got {size}")
    pairs = size * (size - 1) // 2
    if canaries * pairs > n_items * (n_items - 1) // 4:
        raise ValueError(
            f"{canaries} canaries of {size} items need {canaries * pairs} distinct item pairs; "
            f"{n_items} items have {n_items * (n_items - 1) // 2}: use fewer or smaller canaries"
        )
    used: set[tuple[int, int]] = set()
    out: list[np.ndarray] = []
    for _ in range(1000 * canaries):
        chosen = np.sort(rng.choice(n_items, size, replace=False))
        mine = list(combinations(chosen.tolist(), 2))
        if any(p in used for p in mine):
            continue
        used.update(mine)
        out.append(chosen)
        if len(out) == canaries:
            return out
    raise ValueError(f"could not place {canaries} pair-disjoint canaries among {n_items} items")


def diagonal_entries(n_items: int) -> np.ndarray:
    """Positions of the diagonal in the released upper-triangle vector."""
    i = np.arange(n_items, dtype=np.int64)
    return i * n_items - (i * (i - 1)) // 2


def pair_entries(items: np.ndarray, n_items: int) -> np.ndarray:
    """Positions of a user's item pairs (the off-diagonal entries of its term)."""
    touched = np.flatnonzero(contribution(items, n_items))
    return np.setdiff1d(touched, diagonal_entries(n_items)[np.unique(items)])


def _term(items: np.ndarray, n_items: int, control: str | None) -> np.ndarray:
    """What the mechanism sums for one user, before noise."""
    term = cooccurrence_share(items, n_items, 0.0, None)
    if control == "unnormalised":
        term *= np.unique(items).size  # x xᵀ itself
    return term


def _share(
    items: np.ndarray, n_items: int, std: float, rng: DPRandom | None, control: str | None
) -> np.ndarray:
    """One client's vector: the product's share, or a control's."""
    if control in (None, "noise-too-small"):
        return cooccurrence_share(items, n_items, std, rng)  # std: the (shrunk) plan's
    share = _term(items, n_items, control)
    if std > 0:
        assert rng is not None
        where = diagonal_entries(n_items) if control == "diagonal-only" else slice(None)
        share[where] += rng.normal(share[where].shape, std)
    return share


def _plan(cfg: FedRecConfig, n_users: int) -> ReleasePlan:
    survivors = None
    if cfg.privacy.user_dp == "secagg":
        survivors = noise_survivors(cfg.privacy, n_users)
    return plan_release(cfg.privacy, cfg.cooccurrence, n_users, survivors=survivors)


def release_audit(
    cfg: FedRecConfig,
    *,
    placement: str,
    epsilon: float,
    background: Sequence[np.ndarray],
    n_items: int,
    canaries: Sequence[np.ndarray],
    included: np.ndarray,
    control: str | None = None,
) -> dict[str, Any]:
    """One release with ``canaries`` among ``background``, attacked: the audit's row."""
    if placement not in PLACEMENTS:
        raise ValueError(f"placement must be one of {PLACEMENTS}, got {placement!r}")
    if control is not None and control not in CONTROLS:
        raise ValueError(f"unknown co-occurrence control {control!r}")
    included = np.asarray(included, dtype=bool)
    if included.shape != (len(canaries),):
        raise ValueError(f"{included.size} inclusion bits for {len(canaries)} canaries")
    run = cfg.replace(**{"user-dp": placement, "cooccurrence-epsilon": epsilon})
    empty = np.zeros(0, dtype=np.int64)
    users = [*background, *(c if inc else empty for c, inc in zip(canaries, included, strict=True))]
    claimed = _plan(run, len(users))
    plan = claimed
    if control == "noise-too-small":
        plan = replace(
            claimed, client_std=claimed.client_std / 10, server_std=claimed.server_std / 10
        )
    t0 = time.perf_counter()
    acc = None
    clip = release_clipping(plan)
    if placement == "secagg":
        acc = SecureSumAccumulator(clip, quantization_levels(len(users)))
    size = vector_size(n_items)
    total, known = np.zeros(size), np.zeros(size)
    for user, items in enumerate(users):
        rng = None
        if plan.client_std > 0:
            rng = dp_random(
                reproducible=run.privacy.reproducible_noise,
                seeds=(run.data.seed, user),
                what="co-occurrence audit",
            )
        share = _share(items, n_items, plan.client_std, rng, control)
        if acc is not None:
            acc.add({"cooccurrence": share})
        else:
            total += share
        if user < len(background):
            # The attacker's knowledge: each background term as the mechanism sums it
            # (SecAgg+ cuts values to its range; the product's terms never reach it).
            term = _term(items, n_items, control)
            known += np.clip(term, -clip, clip) if acc is not None else term
    if acc is not None:
        total = acc.total()["cooccurrence"]
    if control == "diagonal-only" and plan.server_std > 0:
        rng = dp_random(
            reproducible=run.privacy.reproducible_noise,
            seeds=(run.data.seed, -1),
            what="co-occurrence audit",
        )
        released = total.copy()
        released[diagonal_entries(n_items)] += rng.normal(n_items, plan.server_std)
    else:
        released = release_sum(run, total, plan)
    residual = released - known
    scores = [float(residual[pair_entries(c, n_items)].sum()) for c in canaries]
    result = one_run_audit({ATTACKER: scores}, included, delta=AUDIT_DELTA, confidence=CONFIDENCE)
    assert claimed.epsilon is not None and claimed.delta is not None
    return {
        "level": "user",
        "placement": placement,
        "mechanism": control or "fedrec",
        "target_epsilon": epsilon,
        "run_epsilon": claimed.epsilon,
        "run_delta": claimed.delta,
        "claimed_epsilon": account(
            [(claimed.noise_multiplier, 1.0, 1)], AUDIT_DELTA, run.privacy.user_accountant
        ).epsilon,
        "delta": AUDIT_DELTA,
        "noise_multiplier": claimed.noise_multiplier,
        "client_std": claimed.client_std,
        "server_std": claimed.server_std,
        "clients": len(users),
        "audit": result.to_dict(),
        "seconds": time.perf_counter() - t0,
    }


def cooccurrence_arm(
    cfg: FedRecConfig,
    *,
    placements: Sequence[str] = PLACEMENTS,
    epsilons: Sequence[float] = (4.0, 1.0),
    canaries: int = 5000,
    canary_size: int = 5,
    items: int | None = 500,
    controls: bool = True,
    seed: int = 0,
    background: tuple[Sequence[np.ndarray], int] | None = None,
    progress: Callable[[str], None] = logger.info,
) -> dict[str, Any]:
    """Every co-occurrence row: each placement and ε, fedrec's release and the controls.

    ``background`` (item sets, catalogue size) replaces the data set's training users.
    """
    t0 = time.perf_counter()
    if background is None:
        users, n_items = training_background(cfg, items)
        source = cfg.data.dataset
    else:
        users, n_items = list(background[0]), background[1]
        source, items = "synthetic", None
    rng = np.random.default_rng([seed, 31])  # the auditor's choices, not the mechanism's
    sets = draw_canaries(n_items, canaries, canary_size, rng)
    included = rng.random(canaries) < 0.5
    rows = []
    for placement in placements:
        for epsilon in epsilons:
            for control in (None, *(CONTROLS if controls else ())):
                row = release_audit(
                    cfg,
                    placement=placement,
                    epsilon=epsilon,
                    background=users,
                    n_items=n_items,
                    canaries=sets,
                    included=included,
                    control=control,
                )
                audit = row["audit"]
                row["verdict"] = verdict(
                    audit["epsilon_lower_bound"],
                    row["claimed_epsilon"],
                    audit["power"],
                    control=control is not None,
                )
                rows.append(row)
                progress(
                    f"co-occurrence audit {placement} ε {epsilon:g} {row['mechanism']}: "
                    f"lower bound {row['audit']['epsilon_lower_bound']:.2f} vs claim "
                    f"{row['claimed_epsilon']:.2f} ({row['verdict']}, {row['seconds']:.0f} s)"
                )
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "background": source,
        "background_users": len(users),
        "n_items": n_items,
        "items_kept": items,
        "canaries": canaries,
        "canary_size": canary_size,
        "included": int(included.sum()),
        "seed": seed,
        "placements": list(placements),
        "epsilons": list(epsilons),
        "controls": bool(controls),
        "attacker": ATTACKER,
        "settings": {
            k: cfg.to_run_config()[k]
            for k in (
                "user-accountant",
                "user-delta",
                "secagg-num-shares",
                "secagg-reconstruction-threshold",
                "secagg-max-colluders",
                "reproducible-noise",
            )
        },
        "delta": AUDIT_DELTA,
        "confidence": CONFIDENCE,
        "seconds": time.perf_counter() - t0,
        "machine": machine_stamp(),
        "rows": rows,
    }
