"""The deployment engine: a real SuperLink, real SuperNodes (one per partition), a real run.

Two rounds with record-level DP, submitted and followed with `fedrec deploy run` (`flwr
run`, `flwr log`, `flwr ls`). Everything runs on 127.0.0.1 with free ports, --insecure
(local test only), and is killed at the end whatever happens. TLS, node authentication,
own-data nodes, SecAgg+, feedback and faults: test_deployment_federation.py.
"""

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from fedrec.client.sealing import read_key_file
from fedrec.client.state import ClientStateStore
from fedrec.shared.checkpoint import load_checkpoint
from fedrec.simulations.loopback import free_port, kill_trees, wait_port

from .helpers import BIN, deploy_run, flwr_env, write_tiny_ratings

pytestmark = pytest.mark.slow

N_NODES, ROUNDS = 2, 2


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    kill_trees(started)


def _fedrec(*args: str) -> str:
    out = subprocess.run([str(BIN / "fedrec"), *args], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_superlink_supernodes_flwr_run(
    tmp_path: Path,
    processes: list,  # type: ignore[type-arg]
) -> None:
    data = write_tiny_ratings(tmp_path / "ratings.csv", n_users=4, n_items=20, per_user=10)
    env = flwr_env(tmp_path / "flwr-home")
    # Flower 1.42 serves the Fleet, Control and runtime APIs over one HTTP port.
    link = free_port()
    logs = tmp_path / "logs"
    logs.mkdir()

    def start(name: str, *args: str) -> None:
        log = open(logs / f"{name}.log", "wb")  # noqa: SIM115 (closed with the process)
        processes.append(
            subprocess.Popen([str(BIN / args[0]), *args[1:]], env=env, stdout=log, stderr=log)
        )

    start(
        "superlink",
        "flower-superlink",
        "--insecure",
        "--host",
        "127.0.0.1",
        "--port",
        str(link),
    )
    wait_port(link)
    for k in range(N_NODES):
        key = tmp_path / f"key-{k}" / "state.key"
        _fedrec("node", "keygen", "--out", str(key))
        where = f"partition-id={k} num-partitions={N_NODES}"
        start(
            f"supernode-{k}",
            "fedrec",
            "node",
            "start",
            "--",
            "flower-supernode",
            "--insecure",
            "--superlink",
            f"127.0.0.1:{link}",
            "--port",
            str(free_port()),
            "--node-config",
            f"{where} state-dir='{tmp_path / f'state-{k}'}' state-key-file='{key}'",
        )
    (tmp_path / "flwr-home").mkdir(exist_ok=True)
    (tmp_path / "flwr-home" / "config.toml").write_text(
        f'[superlink]\ndefault = "test"\n\n[superlink.test]\naddress = "127.0.0.1:{link}"\n'
        "insecure = true\n"
    )
    runs = tmp_path / "runs"
    run_config = (
        f"num-rounds={ROUNDS} dataset='generic' data-path='{data}' output-dir='{runs}' "
        "run-name='deployed' fraction-train=1.0 min-train-nodes=2 embedding-dim=8 "
        "personalize-epochs=1"
    )
    out = deploy_run("test", run_config, env, timeout=600)
    diag = out.stdout[-2000:] + out.stderr[-2000:]
    for log in sorted(logs.iterdir()):
        diag += f"\n--- {log.name}\n" + log.read_text(errors="replace")[-1500:]
    assert out.returncode == 0, diag
    assert ": finished:completed" in out.stdout, diag
    # fedrec's own lines reach what the operator sees: the ServerApp's output, streamed.
    # The summary line of each round ("round 1/2 | ...").
    rounds_logged = [
        line for line in out.stdout.splitlines() if re.search(r"fedrec: round \d+/\d+ \|", line)
    ]
    assert (
        len(rounds_logged) == ROUNDS
        and " clients 2 ok/0 failed/0 rejected | devices " in rounds_logged[-1]
    ), diag
    ckpt = load_checkpoint(runs / "deployed")
    assert ckpt.round == ROUNDS, diag
    assert ckpt.manifest["history"][-1]["clients-ok"] == N_NODES
    # Under DP no federated evaluation by default: its metrics would not be covered.
    assert not any(k.startswith("eval/") for k in ckpt.manifest["history"][-1])
    # Each SuperNode kept its private state in its own state-dir, on its side, per run.
    run_id = (runs / "deployed" / "RUN_ID").read_text()
    states = [
        ClientStateStore(
            tmp_path / f"state-{k}" / f"run-{run_id}",
            read_key_file(tmp_path / f"key-{k}" / "state.key"),
        ).load()
        for k in range(N_NODES)
    ]
    assert all(s is not None and s.run_id == run_id for s in states), diag
