"""Federation benchmark: framework overhead, cost growth, time to reach the centralized model.

- **Overhead**: the wall time of a simulated Flower round divided by the wall time of the
  same local training in a plain single-process loop (:mod:`fedrec.simulation.plain_loop`)
  over the same number of clients with the same settings, for several clients per round.
  Round 1 includes the actors' start-up (imports, data loading); round 2 is steady state.
  The Flower arm runs as configured (by default the users on one worker per core,
  ``simulation-users-per-message``); ``per_user`` adds the same rounds with one user per
  node (Flower's default simulation) beside it.
- **Cost growth**: round time and peak memory versus clients per round (ML-100K) and
  versus catalogue size (synthetic data, a fixed number of clients per round).

The time a full federation needs to reach 0.95x the centralized NDCG@10 is reported by the
quality benchmark (:mod:`fedrec.simulations.bench`), which has both runs at hand.

Results go to ``<output_dir>/federation.json``, a Markdown table and a PNG plot.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from fedrec.shared.config import FedRecConfig, resolve_config
from fedrec.shared.data import load_split
from fedrec.shared.models.initial import init_global
from fedrec.simulation.plain_loop import PlainLoop, sample_partitions
from fedrec.simulations.measure import PeakMemory, import_rss, machine_stamp
from fedrec.simulations.report import save
from fedrec.simulations.round_profile import profile_round

logger = logging.getLogger(__name__)

K = 10
# The synthetic catalogue arms' users and interactions per user (recorded in each arm).
SYNTHETIC_USERS = 200
SYNTHETIC_PER_USER = 40
# The synthetic client-count arms: ML-100K's catalogue size, every user in every round.
SCALE_ITEMS = 1682
SCALE_PER_USER = 40
# Memory the report extrapolates to (the development machine's).
MEMORY_LIMIT_GIB = 24
# What each kind of process of a simulation imports, measured alone in a fresh interpreter.
IMPORTS: dict[str, tuple[str, ...]] = {
    "server process (fedrec simulate)": ("fedrec.cli.main", "fedrec.simulation.runner"),
    "worker: Ray, Flower and the cohort trainer": (
        "ray",
        "fedrec.client.client_app",
        "fedrec.client.cohort",
    ),
    "torch alone": ("torch",),
}


def _fraction(n_clients: int, total: int) -> float:
    # FedAvg samples int(total * fraction): nudge so that exactly n_clients come out.
    return min(1.0, (n_clients + 0.5) / total)


def _cli_setting(key: str, value: Any) -> str:
    """``KEY=VALUE`` for ``fedrec simulate -c`` (JSON's literals read as TOML's)."""
    return f"{key}={json.dumps(value)}"


def _flower_rounds(settings: dict[str, Any], num_supernodes: int) -> dict[str, Any]:
    """Two training-only rounds on Flower's simulation engine; per-round seconds + memory.

    The federation runs as ``fedrec simulate`` in a process of its own, and its memory is
    that process's tree (the server, Ray's processes, the workers): the benchmark's own
    process, holding the plain-loop arms' imports and data, is not part of a federation.
    """
    run_dir = Path(settings["output-dir"]) / str(settings["run-name"])
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "fedrec", "simulate", "--num-supernodes", str(num_supernodes)]
    for key, value in settings.items():
        command += ["-c", _cli_setting(key, value)]
    log = run_dir.parent / f"{run_dir.name}.log"
    t0 = time.perf_counter()
    with log.open("w") as out:
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        with PeakMemory(pid=child.pid) as mem:
            code = child.wait()
    if code != 0:
        tail = "\n".join(log.read_text().splitlines()[-20:])
        raise RuntimeError(f"fedrec simulate failed ({code}); the end of {log}:\n{tail}")
    manifest = json.loads(
        (run_dir / "checkpoints" / f"round-{2:05d}" / "manifest.json").read_text()
    )
    rows = manifest["history"]
    return {
        "round_s": [float(r["seconds"]) for r in rows],
        "clients_ok": [int(r["clients-ok"]) for r in rows],
        "wall_s": time.perf_counter() - t0,
        "peak_rss_mib": mem.peak_bytes / 2**20,
        "peak_pss_mib": mem.peak_pss_bytes / 2**20,
        "processes": mem.breakdown_mib(),
    }


def _plain_round(cfg: FedRecConfig, n_clients: int, state_root: Path) -> dict[str, Any]:
    """The same local training in one process: round 2, as Flower's steady-state round."""
    _, split = load_split(cfg.data)
    fed = PlainLoop(
        cfg,
        split.n_users,
        init_global(cfg, split.n_items),
        state_root,
    )
    parts = sample_partitions(split.n_users, n_clients / split.n_users, seed=cfg.data.seed, rnd=1)
    fed.train_round(parts, 1)  # imports, caches, first states: Flower's round 1 has them too
    with PeakMemory() as mem:
        seconds = fed.train_round(parts, 2)
    return {
        "round_s": seconds,
        "clients": len(parts),
        "timed_round": 2,
        "peak_rss_mib": mem.peak_bytes / 2**20,
    }


def _round_settings(base: dict[str, Any], run_name: str, fraction: float) -> dict[str, Any]:
    return {
        **base,
        "num-rounds": 2,
        "fraction-train": fraction,
        "fraction-evaluate": 0.0,
        "final-evaluate-all": False,
        "resume": False,
        "run-name": run_name,
    }


def overhead_arm(
    base: dict[str, Any], n_clients: int, runs_dir: Path, *, per_user: bool = False
) -> dict[str, Any]:
    """Flower vs plain loop for ``n_clients`` clients per round on the base data set.

    ``per_user``: also Flower with one user per node (``flower_per_user``).
    """
    cfg = resolve_config({}, base)
    _, split = load_split(cfg.data)
    n = min(n_clients, split.n_users)
    logger.info("overhead: %d clients per round", n)
    flower = _flower_rounds(
        _round_settings(base, f"bench-overhead-{n}", _fraction(n, split.n_users)), split.n_users
    )
    plain = _plain_round(cfg, n, runs_dir / f"bench-plain-{n}")
    arm = {
        "clients_per_round": n,
        "flower": flower,
        "plain": plain,
        "overhead_round1": flower["round_s"][0] / plain["round_s"],
        "overhead_round2": flower["round_s"][1] / plain["round_s"],
    }
    if per_user:
        single = {**base, "simulation-users-per-message": 1}
        fraction = _fraction(n, split.n_users)
        arm["flower_per_user"] = _flower_rounds(
            _round_settings(single, f"bench-overhead-per-user-{n}", fraction), split.n_users
        )
        arm["overhead_round2_per_user"] = arm["flower_per_user"]["round_s"][1] / plain["round_s"]
    return arm


def write_synthetic(folder: Path, *, n_users: int, n_items: int, per_user: int, seed: int) -> Path:
    """A seeded generic ratings CSV with a Zipf-like item popularity (for catalogue growth).

    An ``items.csv`` beside it lists all ``n_items`` items, so the catalogue (and the item
    table every client trains and sends) has that size even where few items are rated.
    """
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, n_items + 1) ** 0.8
    weights /= weights.sum()
    rows = ["user,item,rating,timestamp"]
    for u in range(n_users):
        for t, i in enumerate(rng.choice(n_items, per_user, replace=False, p=weights)):
            rows.append(f"{u},{i},{int(rng.integers(1, 6))},{1000 + t}")
    path = folder / "ratings.csv"
    path.write_text("\n".join(rows) + "\n")
    items = ["item,title,genres", *(f"{i},Item {i},Drama" for i in range(n_items))]
    (folder / "items.csv").write_text("\n".join(items) + "\n")
    return path


def catalogue_arm(
    base: dict[str, Any], n_items: int, n_clients: int, runs_dir: Path
) -> dict[str, Any]:
    """Round time and memory at ``n_clients`` per round on a synthetic ``n_items`` catalogue."""
    n_users = SYNTHETIC_USERS
    data = write_synthetic(
        runs_dir / f"synthetic-{n_items}",
        n_users=n_users,
        n_items=n_items,
        per_user=SYNTHETIC_PER_USER,
        seed=0,
    )
    settings = {**base, "dataset": "generic", "data-path": str(data)}
    logger.info("catalogue: %d items, %d clients per round", n_items, n_clients)
    flower = _flower_rounds(
        _round_settings(settings, f"bench-items-{n_items}", _fraction(n_clients, n_users)),
        n_users,
    )
    plain = _plain_round(resolve_config({}, settings), n_clients, runs_dir / f"plain-{n_items}")
    return {
        "n_items": n_items,
        "n_users": n_users,
        "per_user": SYNTHETIC_PER_USER,
        "clients_per_round": n_clients,
        "flower": flower,
        "plain": plain,
        "overhead_round2": flower["round_s"][1] / plain["round_s"],
    }


def clients_arm(base: dict[str, Any], n_users: int, runs_dir: Path) -> dict[str, Any]:
    """Round time and memory of a federation of ``n_users`` synthetic users, all training."""
    data = write_synthetic(
        runs_dir / f"synthetic-users-{n_users}",
        n_users=n_users,
        n_items=SCALE_ITEMS,
        per_user=SCALE_PER_USER,
        seed=1,
    )
    settings = {**base, "dataset": "generic", "data-path": str(data)}
    logger.info("clients: %d synthetic users, all of them every round", n_users)
    flower = _flower_rounds(_round_settings(settings, f"bench-users-{n_users}", 1.0), n_users)
    return {
        "clients_per_round": n_users,
        "n_items": SCALE_ITEMS,
        "per_user": SCALE_PER_USER,
        "flower": flower,
    }


def memory_fit(points: Sequence[tuple[float, float]], limit_mib: float) -> dict[str, float] | None:
    """A least-squares line through (size, peak MiB) and the size where it reaches the limit."""
    if len(points) < 2:
        return None
    x = np.array([p[0] for p in points], dtype=np.float64)
    y = np.array([p[1] for p in points], dtype=np.float64)
    slope, intercept = np.polyfit(x, y, 1)
    reach = (limit_mib - intercept) / slope if slope > 0 else float("inf")
    return {"mib_per_unit": float(slope), "base_mib": float(intercept), "reaches_limit_at": reach}


def run_federation_benchmark(
    *,
    overrides: dict[str, Any] | None,
    output_dir: Path,
    runs_dir: Path,
    clients_per_round: Sequence[int] = (10, 100, 943),
    catalogue_sizes: Sequence[int] = (1_000, 10_000, 100_000),
    catalogue_clients: int = 10,
    per_user: bool = True,
    scale_clients: Sequence[int] = (10, 100, 1_000, 10_000),
    name: str = "federation",
) -> dict[str, Any]:
    """Run the arms, write JSON + Markdown + plot; returns the result.

    Every invocation trains in its own scratch folder under ``runs_dir`` (removed at the
    end): the arms' runs have fixed names, and a second invocation must not meet the
    checkpoints of the first.
    """
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S-%f")
    scratch = runs_dir / f"bench-federation-{stamp}"
    base = {**(overrides or {}), "output-dir": str(scratch)}
    cfg = resolve_config({}, base)
    result: dict[str, Any] = {
        "benchmark": name,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "dataset": cfg.data.dataset,
        "settings": cfg.to_run_config(),
        "machine": machine_stamp(),
        "overhead": [overhead_arm(base, n, scratch, per_user=per_user) for n in clients_per_round],
        "catalogue": [catalogue_arm(base, n, catalogue_clients, scratch) for n in catalogue_sizes],
        "clients": [clients_arm(base, n, scratch) for n in scale_clients],
        "imports": {what: import_rss(modules) for what, modules in IMPORTS.items()},
    }
    if clients_per_round:
        # Where the time of the largest round goes (the plain loop: the same functions).
        result["profile"] = profile_round(cfg, max(clients_per_round))
    limit = MEMORY_LIMIT_GIB * 1024
    result["memory_limit_gib"] = MEMORY_LIMIT_GIB
    result["memory_fit"] = {
        "clients": memory_fit(
            [(a["clients_per_round"], a["flower"]["peak_rss_mib"]) for a in result["clients"]],
            limit,
        ),
        "items": memory_fit(
            [(a["n_items"], a["flower"]["peak_rss_mib"]) for a in result["catalogue"]], limit
        ),
    }
    shutil.rmtree(scratch, ignore_errors=True)
    save(result, output_dir, name, kind="federation")
    return result
