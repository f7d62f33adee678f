"""The deployment engine: a real SuperLink, real SuperNodes (one per partition), a real run.

Runs are submitted and followed with `fedrec deploy run` (`flwr run`, `flwr log`, `flwr ls`).

Everything runs on 127.0.0.1 with free ports, --insecure (local test only), and is killed
at the end whatever happens.
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

N_NODES = 2


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    kill_trees(started)


def _fedrec(*args: str) -> str:
    out = subprocess.run([str(BIN / "fedrec"), *args], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def _own_data(tmp_path: Path, ratings: Path) -> Path:
    """docs/deployment.md, "Node-local data and feedback": the catalogue, and each node's
    own users (users k and k + 2 on node k), imported and recorded with `fedrec node`."""
    items = tmp_path / "items.csv"
    items.write_text("item,title\n" + "".join(f"{i},Item {i}\n" for i in range(20)))
    catalog = tmp_path / "catalog.json"
    _fedrec("catalog", "--items", str(items), "--out", str(catalog))
    lines = ratings.read_text().splitlines()
    for k in range(N_NODES):
        mine = [row for row in lines[1:] if int(row.split(",")[0]) % N_NODES == k]
        history = tmp_path / f"history-{k}.csv"
        history.write_text("\n".join([lines[0], *mine]) + "\n")
        data = str(tmp_path / f"data-{k}")
        _fedrec("node", "catalog", "--data-dir", data, str(catalog))
        _fedrec("node", "import", "--data-dir", data, str(history), "--hold-out-newest")
        _fedrec("node", "record", "--data-dir", data, "--user", str(k), "--item", "19", "--like")
        history.unlink()  # the device's history is in its store now
    ratings.unlink()  # nobody holds all ratings: not the server, not the nodes
    return catalog


@pytest.mark.parametrize(
    ("rounds", "extra"),
    [
        (2, ""),
        # SecAgg+ over the deployment engine's real transport: the server gets the sum only.
        # One round: each of its four stages starts a ClientApp process per node.
        (1, "user-dp='secagg' user-clip=0.5 user-noise-multiplier=0.5"),
        # Each node holds its own users' data; the server reads the catalogue file alone.
        (1, "own-data"),
    ],
    ids=["record-dp", "secagg", "own-data"],
)
def test_superlink_supernodes_flwr_run(
    tmp_path: Path,
    processes: list,  # type: ignore[type-arg]
    rounds: int,
    extra: str,
) -> None:
    data = write_tiny_ratings(tmp_path / "ratings.csv", n_users=4, n_items=20, per_user=10)
    own_data = extra == "own-data"
    source = f"dataset='generic' data-path='{data}'"
    if own_data:
        # No text towers: `fedrec node recommend` ranks plain factor models on the device.
        source = f"data-source='node' data-path='{_own_data(tmp_path, data)}' text-tower='off'"
        extra = ""
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
        if own_data:
            where = f"data-dir='{tmp_path / f'data-{k}'}'"
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
        f"num-rounds={rounds} {source} output-dir='{runs}' "
        "run-name='deployed' fraction-train=1.0 min-train-nodes=2 embedding-dim=8 "
        f"personalize-epochs=1 {extra}"
    )
    # SecAgg+ starts a ClientApp process per node for each of its four stages: slow on 2 cores.
    out = deploy_run("test", run_config, env, timeout=600)
    diag = out.stdout[-2000:] + out.stderr[-2000:]
    for log in sorted(logs.iterdir()):
        diag += f"\n--- {log.name}\n" + log.read_text(errors="replace")[-1500:]
    assert out.returncode == 0, diag
    assert ": finished:completed" in out.stdout, diag
    # fedrec's own lines reach what the operator sees: the ServerApp's output, streamed.
    # The summary line of each round ("round 1/1 | ..."), not its SecAgg+ stage-cost line.
    rounds_logged = [
        line for line in out.stdout.splitlines() if re.search(r"fedrec: round \d+/\d+ \|", line)
    ]
    assert (
        len(rounds_logged) == rounds
        and " clients 2 ok/0 failed/0 rejected | devices " in rounds_logged[-1]
    ), diag
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
    if own_data:
        # Each node trained one private factor per own user ...
        assert all(s is not None and s.user_factors.shape[0] == 2 for s in states), diag
        # ... and ranks for its users on the device, with that factor.
        top = _fedrec(
            "node", "recommend", "--data-dir", str(tmp_path / "data-0"), "--user", "0",
            "--model", str(runs / "deployed"), "--state-dir", str(tmp_path / "state-0"),
            "--state-key-file", str(tmp_path / "key-0" / "state.key"), "-k", "5",
        )  # fmt: skip
        assert len(top.splitlines()) == 5, top
