"""Where one round's time goes: a profile of a plain-loop round, by stage.

The federation benchmark publishes it next to its timings, so a reader sees what a round
costs before and after a change. Stages are the functions a round calls, timed
cumulatively by :mod:`cProfile` (whose own overhead inflates every stage a little): data
views, starting the round (state read, budget checks), batched DP-SGD (of which: per-sample
gradients and clipping, noise), saving states, building replies and aggregating.
"""

from __future__ import annotations

import cProfile
import pstats
import tempfile
import time
from pathlib import Path
from typing import Any

from fedrec.shared.config import FedRecConfig
from fedrec.shared.data import load_split
from fedrec.shared.models.initial import init_global
from fedrec.simulation.plain_loop import PlainLoop, sample_partitions

# (stage, file suffix, function name): the profiled functions each stage is made of.
STAGES: tuple[tuple[str, str, str], ...] = (
    ("data views", "client/dataview.py", "load_client_data"),
    ("start (state read, budget)", "client/task.py", "start_local_round"),
    ("DP-SGD, batched", "shared/cohort_training.py", "train_cohort_local"),
    ("  per-sample gradients + clip", "shared/cohort_training.py", "_clipped_sums"),
    ("  Gaussian noise", "shared/privacy/random.py", "add_normal_each"),
    ("save states", "client/task.py", "finish_local_round"),
    ("replies", "client/replies.py", "trained_reply"),
    ("aggregate", "server/rounds.py", "aggregate"),
)


def profile_round(cfg: FedRecConfig, n_clients: int, *, top: int = 12) -> dict[str, Any]:
    """Profile round 2 of a plain-loop federation of ``n_clients`` (round 1 warms up)."""
    _, split = load_split(cfg.data)
    with tempfile.TemporaryDirectory() as root:
        loop = PlainLoop(cfg, split.n_users, init_global(cfg, split.n_items), Path(root))
        parts = sample_partitions(
            split.n_users, n_clients / split.n_users, seed=cfg.data.seed, rnd=1
        )
        loop.train_round(parts, 1)
        profiler = cProfile.Profile()
        t0 = time.perf_counter()
        profiler.enable()
        loop.train_round(parts, 2)
        profiler.disable()
        wall = time.perf_counter() - t0
    stats = pstats.Stats(profiler)
    cumulative: dict[tuple[str, str], float] = {}
    for (filename, _, name), row in stats.stats.items():  # type: ignore[attr-defined]
        key = (filename.replace("\\", "/"), name)
        cumulative[key] = cumulative.get(key, 0.0) + float(row[3])
    stages = []
    for label, suffix, name in STAGES:
        seconds = sum(v for (f, n), v in cumulative.items() if n == name and f.endswith(suffix))
        stages.append({"stage": label, "function": f"{suffix}: {name}", "seconds": seconds})
    self_times = [
        (f"{Path(f).name}: {n}", float(row[2]))
        for (f, _, n), row in stats.stats.items()  # type: ignore[attr-defined]
    ]
    hot = [
        {"function": name, "self_s": seconds}
        for name, seconds in sorted(self_times, key=lambda r: -r[1])[:top]
    ]
    return {
        "clients": len(parts),
        "wall_s_profiled": wall,
        "stages": stages,
        "hottest_self_time": hot,
    }
