"""A cohort: each member answers as its own client; one member's failure is its own."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from fedrec.client.cohort import check_cohorts_allowed, simulated_members, train_cohort
from fedrec.shared.config import resolve_config
from fedrec.shared.data import load_split
from fedrec.shared.errors import ConfigError
from fedrec.shared.models import text_cache
from fedrec.shared.models.initial import init_global
from fedrec.simulations.loopback import write_tiny_ratings


def _cfg(tmp_path: Path, **over: object):  # type: ignore[no-untyped-def]
    data = write_tiny_ratings(tmp_path / "r.csv", n_users=6, n_items=20, per_user=8)
    settings = {
        "dataset": "generic",
        "data-path": str(data),
        "embedding-dim": 4,
        "text-tower": "off",
        "output-dir": str(tmp_path / "runs"),
        **over,
    }
    return resolve_config({}, settings)


@pytest.mark.parametrize("dp", [True, False])  # batched, and one by one
def test_a_member_that_cannot_train_fails_alone(tmp_path: Path, dp: bool) -> None:
    cfg = _cfg(tmp_path, **{"dp-enabled": dp})
    _, split = load_split(cfg.data)
    members = simulated_members(cfg, range(split.n_users), split.n_users, run_id=None)
    empty = dataclasses.replace(
        members[2].data,
        train_users=np.zeros(0, np.int64),
        train_items=np.zeros(0, np.int64),
    )
    members[2] = dataclasses.replace(members[2], data=empty)
    glob = init_global(cfg, split.n_items)
    replies = train_cohort(cfg, members, glob, server_round=1, device=torch.device("cpu"))
    assert replies[2].error is not None and "no training interactions" in replies[2].error
    for j, reply in enumerate(replies):
        if j != 2:
            assert reply.error is None
            assert not np.allclose(reply.arrays["item_factors"], glob["item_factors"])
            assert members[j].store.load() is not None  # its own state was saved


def test_secagg_members_cannot_share_a_call(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SecAgg"):
        check_cohorts_allowed(_cfg(tmp_path, **{"user-dp": "secagg"}))


# What a simulation worker never needs: Opacus (the batched trainer clips and noises itself),
# the text encoder and its libraries (the catalogue's embeddings are read from the cache),
# the HTTP service.
WORKER_NEVER_IMPORTS = ("opacus", "transformers", "peft", "fastapi", "sympy", "scipy.stats")

_WORKER = """
import json, sys
import torch
from fedrec.client import client_app
from fedrec.client.cohort import simulated_members, train_cohort
from fedrec.shared.config import resolve_config
from fedrec.shared.data import load_split
from fedrec.shared.models.initial import init_global
cfg = resolve_config({}, json.loads(sys.argv[1]))
_, split = load_split(cfg.data)
members = simulated_members(cfg, range(split.n_users), split.n_users, run_id=None)
glob = init_global(cfg, split.n_items)
replies = train_cohort(cfg, members, glob, server_round=1, device=torch.device("cpu"))
assert all(r.error is None for r in replies), [r.error for r in replies]
print(json.dumps(sorted(m for m in sys.argv[2].split(",") if m in sys.modules)))
"""


def test_a_batched_cohort_worker_loads_neither_opacus_nor_the_text_encoder(
    tmp_path: Path,
) -> None:
    cfg = _cfg(tmp_path, **{"text-tower": "heads", "text-cache-dir": str(tmp_path / "emb")})
    dataset, _ = load_split(cfg.data)
    # The cache the server writes before any worker trains (here: any vectors will do).
    texts = list(dataset.items.texts)
    key = text_cache.cache_key(texts, cfg.text.text_max_length)
    (tmp_path / "emb").mkdir()
    vectors = np.random.default_rng(0).standard_normal((len(texts), text_cache.TEXT_DIM))
    np.save(tmp_path / "emb" / f"text-emb-{key}.npy", vectors.astype(np.float32))
    settings = {**cfg.to_run_config(), "text-cache-dir": str(tmp_path / "emb")}
    out = subprocess.run(
        [sys.executable, "-c", _WORKER, json.dumps(settings), ",".join(WORKER_NEVER_IMPORTS)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout) == []
