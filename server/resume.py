"""Where a run starts: fresh, or from its newest checkpoint, with what it had spent.

A restarted server continues at ``LATEST + 1`` with that checkpoint's model, history,
record-level ε and server optimizer state, and refuses to continue a run whose identity
settings changed (docs/architecture.md, "Resume"). Every history row records the token of
the server process that committed it, so the next process can tell its clients which
rounds each earlier process checkpointed (:func:`committed_incarnations`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fedrec.shared.checkpoint import latest_round, load_checkpoint
from fedrec.shared.config import FedRecConfig
from fedrec.shared.errors import ConfigError
from fedrec.shared.models.initial import init_global

logger = logging.getLogger(__name__)

# Settings a run cannot change between restarts: they define its data, model and clients.
IDENTITY_KEYS = (
    "dataset",
    "data-path",
    "data-source",
    "embedding-dim",
    "seed",
    "implicit-threshold",
    "strategy",
    "text-tower",
)


@dataclass
class RunStart:
    """The round a server process starts at and what the run holds by then."""

    round: int
    global_tensors: dict[str, np.ndarray]
    history: list[dict[str, Any]] = field(default_factory=list)
    epsilon: float = 0.0  # record-level, the largest any client reported so far
    server_state: dict[str, np.ndarray] = field(default_factory=dict)


def start_of(cfg: FedRecConfig, run_dir: Path, n_items: int) -> RunStart:
    """Round 1 from the seeded initial model, or the round after the newest checkpoint."""
    last = latest_round(run_dir)
    if last is None:
        logger.info("starting %s at round 1: it holds no checkpoint", run_dir)
        return RunStart(1, init_global(cfg, n_items))
    if not cfg.output.resume:
        raise ConfigError(
            f"{run_dir} already holds checkpoints up to round {last}; set resume=true to "
            "continue it, or choose another run-name"
        )
    ckpt = load_checkpoint(run_dir, round=last)
    saved = ckpt.manifest.get("config", {})
    now = cfg.to_run_config()
    for key in IDENTITY_KEYS:
        if key in saved and saved[key] != now[key]:
            raise ConfigError(
                f"cannot resume {run_dir}: {key} was {saved[key]!r}, now {now[key]!r}; use "
                "another run-name for new settings"
            )
    privacy = ckpt.manifest.get("privacy") or {}
    logger.info("resuming %s from round %d", run_dir, last)
    return RunStart(
        last + 1,
        dict(ckpt.tensors),
        list(ckpt.manifest.get("history", [])),
        float(privacy.get("epsilon") or 0.0),
        dict(ckpt.server_state),
    )


def committed_incarnations(history: list[dict[str, Any]]) -> list[str]:
    """``"token:first:last"`` for each server process that checkpointed rounds of this run."""
    spans: dict[str, list[int]] = {}
    for row in history:
        token = row.get("server-incarnation")
        if isinstance(token, str) and token:
            span = spans.setdefault(token, [int(row["round"]), int(row["round"])])
            span[0], span[1] = min(span[0], int(row["round"])), max(span[1], int(row["round"]))
    return [f"{token}:{first}:{last}" for token, (first, last) in spans.items()]
