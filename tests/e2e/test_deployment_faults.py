"""A SuperLink killed mid-run and started again on its database: the run goes on by itself.

`fedrec deploy run` follows a three-round run over a SuperLink with a `--database` and two
SuperNodes under `fedrec node start` (127.0.0.1, `--insecure`). Right after checkpoint 1 the
SuperLink is killed with SIGKILL (its ServerApp with it) and started again on the same
database. Flower marks the run failed once its ServerApp's heartbeats stop; `fedrec deploy
run` submits it again, and the new ServerApp resumes from checkpoint 1: each round is
checkpointed once, and nobody starts anything by hand. Every process is killed at the end.
"""

import subprocess
import time
from pathlib import Path

import pytest

from fedrec.shared.checkpoint import latest_round, load_checkpoint
from fedrec.simulations.loopback import free_port, wait_port

from .helpers import BIN, ROOT, Daemons, flwr_env, write_tiny_ratings

pytestmark = pytest.mark.slow

N_NODES, ROUNDS = 2, 3


def test_a_restarted_superlink_continues_the_run_from_its_checkpoint(tmp_path: Path) -> None:
    # Prepare: a SuperLink with a database, two supervised SuperNodes, a connection.
    data = write_tiny_ratings(tmp_path / "ratings.csv", n_users=4, n_items=20, per_user=10)
    folder = tmp_path / "deploy"
    folder.mkdir()
    daemons = Daemons(folder, flwr_env(tmp_path / "flwr-home"))
    try:
        port = free_port()
        superlink = ("flower-superlink", "--insecure", "--database", "superlink.db",
                     "--host", "127.0.0.1", "--port", str(port))  # fmt: skip
        daemons.start("superlink", *superlink)
        wait_port(port)
        for k in range(N_NODES):
            key = folder / f"node-{k}" / "state.key"
            subprocess.run([str(BIN / "fedrec"), "node", "keygen", "--out", str(key)], check=True)
            daemons.start(
                f"supernode-{k}",
                "fedrec", "node", "start", "--backoff", "1", "--backoff-max", "8", "--",
                "flower-supernode", "--insecure", "--superlink", f"127.0.0.1:{port}",
                "--port", str(free_port()), "--node-config",
                f"partition-id={k} num-partitions={N_NODES} "
                f"state-dir='{folder / f'state-{k}'}' state-key-file='{key}'",
            )  # fmt: skip
        home = Path(daemons.env["FLWR_HOME"])
        home.mkdir(exist_ok=True)
        (home / "config.toml").write_text(
            f'[superlink]\ndefault = "test"\n\n[superlink.test]\naddress = "127.0.0.1:{port}"\n'
            "insecure = true\n"
        )
        runs = tmp_path / "runs"
        run_dir = runs / "faults"

        # Execute: the run; the SuperLink killed after checkpoint 1, then started again.
        daemons.start(
            "deploy-run",
            "fedrec", "deploy", "run", "test", "--app", str(ROOT), "--run-config",
            f"num-rounds={ROUNDS} dataset='generic' data-path='{data}' output-dir='{runs}' "
            f"run-name='faults' min-train-nodes={N_NODES} embedding-dim=8 round-timeout=120",
        )  # fmt: skip
        deadline = time.monotonic() + 300
        while latest_round(run_dir) is None and time.monotonic() < deadline:
            assert daemons.started["deploy-run"].poll() is None, daemons.diagnostics()
            time.sleep(0.2)
        assert latest_round(run_dir) == 1, daemons.diagnostics()
        killed_at = time.monotonic()
        daemons.stop("superlink")
        daemons.start("superlink-restarted", *superlink)
        wait_port(port)

        # Assert: it completed without anyone re-submitting it, every round checkpointed
        # once, the rounds after the restart by a second ServerApp that resumed.
        assert daemons.wait("deploy-run", timeout=600) == 0, daemons.diagnostics()
        print(f"killed SuperLink: run finished {time.monotonic() - killed_at:.0f} s after the kill")
        log = daemons.log("deploy-run")
        assert "lost its ServerApp; submitting it again to resume it" in log, log[-3000:]
        assert f"resuming {run_dir} from round 1" in log, log[-3000:]
        history = load_checkpoint(run_dir).manifest["history"]
        assert [row["round"] for row in history] == list(range(1, ROUNDS + 1))
        first, *later = (row["server-incarnation"] for row in history)
        assert later and all(token != first for token in later)
    finally:
        daemons.stop_all()
