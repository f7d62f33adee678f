"""The deployment engine: a real SuperLink, real SuperNodes (one per partition), `flwr run`.

Everything runs on 127.0.0.1 with free ports, --insecure (local test only), and is killed
at the end whatever happens.
"""

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from fedrec.client.sealing import read_key_file
from fedrec.client.state import ClientStateStore
from fedrec.shared.checkpoint import load_checkpoint

from .helpers import BIN, flwr_env, flwr_run, free_port, wait_port, write_tiny_ratings

pytestmark = pytest.mark.slow

N_NODES = 2


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        proc.kill()
    for proc in started:
        proc.wait(timeout=30)


@pytest.mark.parametrize(
    ("rounds", "extra"),
    [
        (2, ""),
        # SecAgg+ over the deployment engine's real transport: the server gets the sum only.
        # One round: each of its four stages starts a ClientApp process per node.
        (1, "user-dp='secagg' user-clip=0.5 user-noise-multiplier=0.5"),
    ],
    ids=["record-dp", "secagg"],
)
def test_superlink_supernodes_flwr_run(
    tmp_path: Path,
    processes: list,  # type: ignore[type-arg]
    rounds: int,
    extra: str,
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
        made = subprocess.run(
            [str(BIN / "fedrec"), "node", "keygen", "--out", str(key)], capture_output=True
        )
        assert made.returncode == 0, made.stderr
        start(
            f"supernode-{k}",
            "flower-supernode",
            "--insecure",
            "--superlink",
            f"127.0.0.1:{link}",
            "--port",
            str(free_port()),
            "--node-config",
            f"partition-id={k} num-partitions={N_NODES} state-dir='{tmp_path / f'state-{k}'}' "
            f"state-key-file='{key}'",
        )
    (tmp_path / "flwr-home").mkdir(exist_ok=True)
    (tmp_path / "flwr-home" / "config.toml").write_text(
        f'[superlink]\ndefault = "test"\n\n[superlink.test]\naddress = "127.0.0.1:{link}"\n'
        "insecure = true\n"
    )
    runs = tmp_path / "runs"
    run_config = (
        f"num-rounds={rounds} dataset='generic' data-path='{data}' output-dir='{runs}' "
        "run-name='deployed' fraction-train=1.0 min-train-nodes=2 embedding-dim=8 "
        f"personalize-epochs=1 {extra}"
    )
    out = flwr_run("test", run_config, env)
    diag = out.stdout[-2000:] + out.stderr[-2000:]
    for log in sorted(logs.iterdir()):
        diag += f"\n--- {log.name}\n" + log.read_text(errors="replace")[-1500:]
    assert out.returncode == 0, diag
    ckpt = load_checkpoint(runs / "deployed")
    assert ckpt.round == rounds, diag
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
    if "secagg" in extra:
        last = ckpt.manifest["history"][-1]
        assert last["secagg-survivors"] == N_NODES, diag
        user = ckpt.manifest["user_privacy"]
        assert user["placement"] == "secagg" and user["epsilon"] > 0, diag
        for state in states:
            assert state is not None and "secagg" in state.user_ledger, diag
