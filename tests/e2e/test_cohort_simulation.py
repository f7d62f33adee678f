"""Cohorts through Flower's simulation engine (Ray): worker nodes, the same users' rounds.

Three workers train 12 simulated users under DP; with ``reproducible-noise`` and the same
seeds the global model after round 1 equals one user per node's and the plain loop's.
"""

from pathlib import Path

import numpy as np
import pytest

from fedrec.client.dataview import state_dir
from fedrec.client.state import ClientStateStore
from fedrec.shared.checkpoint import load_checkpoint, run_id
from fedrec.shared.config import resolve_config
from fedrec.shared.data import load_split
from fedrec.shared.models.initial import init_global
from fedrec.simulation.plain_loop import PlainLoop
from fedrec.simulation.runner import simulate
from tests.e2e.helpers import tiny_run_settings

pytestmark = pytest.mark.slow

USERS = 12


def _settings(tmp_path: Path, name: str, **extra: object) -> dict[str, object]:
    return tiny_run_settings(tmp_path, name, users=USERS, num_rounds=2, **extra)


def _epsilons(run_dir: Path, settings: dict[str, object]) -> dict[int, float]:
    cfg, identity = resolve_config({}, settings), run_id(run_dir)
    out = {}
    for pid in range(USERS):
        state = ClientStateStore(state_dir(cfg, pid, None, identity)).load()
        assert state is not None, f"user {pid} never trained"
        assert state.rounds_trained == [1, 2]
        out[pid] = state.epsilon
    return out


def test_workers_train_every_user_as_one_user_per_node_does(tmp_path: Path) -> None:
    # Execute: cohorts on 3 workers, one user per node, the plain loop.
    cohorts = _settings(tmp_path, "cohorts")
    single = _settings(tmp_path, "single", **{"simulation-users-per-message": 1})
    cohort_dir = simulate(cohorts, num_workers=3)
    single_dir = simulate(single)
    cfg = resolve_config({}, cohorts)
    _, split = load_split(cfg.data)
    plain = PlainLoop(cfg, USERS, init_global(cfg, split.n_items), tmp_path / "plain")
    plain.train_round(list(range(USERS)), 1)
    # Assert: every user trained both rounds and spent what it spends on its own node.
    cohort_eps, single_eps = _epsilons(cohort_dir, cohorts), _epsilons(single_dir, single)
    assert cohort_eps == pytest.approx(single_eps) and min(cohort_eps.values()) > 0
    for row in load_checkpoint(cohort_dir).manifest["history"]:
        assert row["clients-sampled"] == row["clients-ok"] == USERS
    # The same model after round 1 on all three paths (and after round 2 on both Flower ones).
    for rnd in (1, 2):
        got = load_checkpoint(cohort_dir, round=rnd).tensors
        ref = load_checkpoint(single_dir, round=rnd).tensors
        for name, tensor in got.items():
            assert np.allclose(tensor, ref[name], rtol=1e-5, atol=1e-7), (rnd, name)
            if rnd == 1:
                assert np.allclose(tensor, plain.global_tensors[name], rtol=1e-5, atol=1e-7)
