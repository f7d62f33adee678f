"""Kill `fedrec simulate` mid-round with SIGKILL, run it again: no round lost or repeated.

The process (server, Ray and every client actor) is killed while the clients are training
round 3, after checkpoint 2: some clients have already saved their round-3 state, the
server has not checkpointed round 3. The second run resumes from checkpoint 2, runs round
3 again, and the clients that had trained it roll back to their round-2 state first.
"""

import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import numpy as np
import psutil
import pytest

from fedrec.client.state import ClientState, ClientStateStore
from fedrec.shared.checkpoint import latest_round, list_rounds, load_checkpoint

from .helpers import BIN, ROOT, write_tiny_ratings

pytestmark = pytest.mark.slow

N_CLIENTS, ROUNDS, KILL_IN_ROUND = 8, 4, 3
MARKER = "FEDREC_E2E_KILL_TEST"  # set in the environment of every process the test starts


def _command(data: Path, runs: Path) -> list[str]:
    settings = {
        "dataset": "generic",
        "data-path": str(data),
        "num-rounds": ROUNDS,
        # Every client trains every round (each must end at [1..4]); the server waits for all
        # of them to connect before round 1 instead of sampling whoever is up.
        "fraction-train": 1.0,
        "min-train-nodes": N_CLIENTS,
        "fraction-evaluate": 1.0,
        "personalize-epochs": 2,
        "embedding-dim": 8,
        "dp-sample-rate": 0.05,  # DP on: the accountant is part of what must survive
        # The redone round is compared bit for bit with the lost one, which needs seeded
        # noise; never the default (privacy.md).
        "reproducible-noise": "true",
        "output-dir": str(runs),
        "run-name": "killed",
    }
    cmd = [str(BIN / "fedrec"), "simulate", "--num-supernodes", str(N_CLIENTS)]
    for key, value in settings.items():
        cmd += ["-c", f"{key}={value}"]
    return cmd


def _states(run_dir: Path) -> dict[int, ClientState]:
    """Each client's saved (committed) state, by partition."""
    out = {}
    for k in range(N_CLIENTS):
        state = ClientStateStore(run_dir / "clients" / f"partition-{k}").load()
        if state is not None:
            out[k] = state
    return out


def _reap(token: str) -> None:
    """SIGKILL every process that carries this test's marker (Ray's daemons and actors)."""
    for p in psutil.process_iter():
        try:
            if p.environ().get(MARKER) == token:
                p.kill()
        except psutil.Error:
            continue


def _kill_tree(proc: subprocess.Popen[bytes], token: str) -> None:
    """SIGKILL the run's process group (Ray starts children), then any stray marked one."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)
    _reap(token)


def _steps(state: ClientState) -> int:
    return sum(int(n) for _, _, n in state.accountant_history)


def test_killed_server_resumes_without_losing_or_repeating_a_round(tmp_path: Path) -> None:
    data = write_tiny_ratings(tmp_path / "ratings.csv", n_users=N_CLIENTS, n_items=60, per_user=30)
    runs = tmp_path / "runs"
    run_dir = runs / "killed"
    cmd = _command(data, runs)
    token = uuid.uuid4().hex
    env = {**os.environ, MARKER: token}

    # ---- first run: kill it while round 3 is being trained (checkpoint 2 exists)
    log1 = tmp_path / "run1.log"
    with open(log1, "wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, (
                "the run ended before it could be killed:\n" + (log1.read_text()[-3000:])
            )
            assert time.monotonic() < deadline, log1.read_text()[-3000:]
            if latest_round(run_dir) == KILL_IN_ROUND - 1 and any(
                s.last_round == KILL_IN_ROUND for s in _states(run_dir).values()
            ):
                break
            time.sleep(0.01)
    finally:
        _kill_tree(proc, token)

    assert latest_round(run_dir) == KILL_IN_ROUND - 1, "killed too late: round 3 was saved"
    created = {
        r: load_checkpoint(run_dir, round=r).manifest["created_at"] for r in range(1, KILL_IN_ROUND)
    }
    at_kill = _states(run_dir)
    assert len(at_kill) == N_CLIENTS
    lost = {k for k, s in at_kill.items() if s.last_round == KILL_IN_ROUND}
    assert lost, "no client had trained the round that was lost"
    for k, s in at_kill.items():
        assert s.rounds_trained == list(range(1, KILL_IN_ROUND + (k in lost)))
    # Each state names the server process it trained for (sent in every train message).
    first_server = {s.incarnation for s in at_kill.values()}
    assert len(first_server) == 1 and None not in first_server

    # ---- second run: the same command resumes from checkpoint 2
    t0 = time.monotonic()
    try:
        rerun = subprocess.run(
            cmd,
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            start_new_session=True,
        )
    finally:
        _reap(token)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert time.monotonic() - t0 < 120

    # Rounds 1 and 2 were not run again: their checkpoints are the first run's.
    for r in range(1, KILL_IN_ROUND):
        assert load_checkpoint(run_dir, round=r).manifest["created_at"] == created[r]

    # Every round checkpointed exactly once, in order; the history agrees at every round.
    assert list_rounds(run_dir) == list(range(1, ROUNDS + 1))
    assert sorted(p.name for p in (run_dir / "checkpoints").glob("round-*")) == [
        f"round-{r:05d}" for r in range(1, ROUNDS + 1)
    ]
    for r in range(1, ROUNDS + 1):
        history = load_checkpoint(run_dir, round=r).manifest["history"]
        assert [row["round"] for row in history] == list(range(1, r + 1))
    final = load_checkpoint(run_dir)
    assert final.manifest["round"] == ROUNDS and latest_round(run_dir) == ROUNDS

    # Every client trained each round once (the lost round 3 again, not on top of itself).
    done = _states(run_dir)
    assert sorted(done) == list(range(N_CLIENTS))
    second_server = {s.incarnation for s in done.values()}
    assert len(second_server) == 1 and None not in second_server
    assert second_server != first_server, "the resumed server must be a new incarnation"
    for k, state in done.items():
        assert state.rounds_trained == list(range(1, ROUNDS + 1)), (k, state.rounds_trained)
        assert state.discarded_rounds == ([KILL_IN_ROUND] if k in lost else [])
        # The privacy ledger is conservative: a discarded round's DP steps stay spent.
        per_round = _steps(at_kill[k]) // len(at_kill[k].rounds_trained)
        extra = len(state.discarded_rounds)
        assert _steps(state) == per_round * (ROUNDS + extra)
        assert state.epsilon <= final.manifest["privacy"]["epsilon"] + 1e-9
    # A rolled-back client redid round 3 from its round-2 state with checkpoint 2's model,
    # so it reached the very state the lost run had reached (training and noise are seeded).
    for k in lost:
        before_round_4 = ClientStateStore(run_dir / "clients" / f"partition-{k}").load_previous()
        assert before_round_4 is not None
        assert before_round_4.rounds_trained == list(range(1, KILL_IN_ROUND + 1))
        np.testing.assert_allclose(
            before_round_4.user_factors, at_kill[k].user_factors, rtol=0, atol=1e-6
        )
