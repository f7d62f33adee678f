"""A federation of edge nodes, all of it at once: docs/deployment.md §2 command by command.

On 127.0.0.1 with free ports: `fedrec certs` makes the CA, the SuperLink certificate and
four node key pairs; the SuperLink runs with TLS, SuperNode authentication and a database.
Three nodes are registered with `flwr supernode register`; each holds only its own users'
interactions and the catalogue (`fedrec node import`, node config `data-dir`), the server
only the catalogue (`data-source = node`). The fourth node, never registered, is refused.
A two-round run with user-level DP under SecAgg+ (`user-dp = secagg`), submitted and
followed by `fedrec deploy run`, goes through:

- a SuperNode killed (SIGKILL) as it starts round 1: `fedrec node start` restarts it, the
  SuperLink takes it back, it trains round 2;
- the SuperLink killed (SIGKILL, its ServerApp with it) right after checkpoint 1 and started
  again on its database: the registrations survive, `fedrec deploy run` submits the run
  again and the new ServerApp resumes from checkpoint 1;
- while the SuperLink is down, between the rounds, a user on node 1 likes the item the
  device recommends first (`fedrec node recommend`, then `fedrec node record`); after
  round 2 the device ranks from its round-2 model and the user's retrained private factor.

Then the checkpoints, the nodes' sealed privacy ledgers and a failing run's exit status are
checked. Every process is killed at the end whatever happens.
"""

import json
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from fedrec.client.dataview import node_client_data
from fedrec.client.localstore import NodeStore
from fedrec.client.sealing import SealError, read_key_file
from fedrec.client.state import STATE_FILE, ClientStateStore
from fedrec.client.state_record import ClientState
from fedrec.shared.checkpoint import latest_round, load_checkpoint
from fedrec.shared.config import resolve_config
from fedrec.shared.data import read_catalog
from fedrec.simulations.loopback import free_port, wait_port

from .helpers import (
    ROOT,
    Daemons,
    flwr_env,
    own_data,
    tls_superlink,
    tls_supernode,
    write_tiny_ratings,
)

pytestmark = pytest.mark.slow

NODES = ["node-1", "node-2", "node-3"]  # registered; node-4 is not
RUN = "federation"
USER, K = "0", 5  # a user of node-1 (users u with u mod 3 == 0), the list's length


@pytest.fixture
def deploy(tmp_path: Path) -> Iterator[Daemons]:
    folder = tmp_path / "deploy"
    folder.mkdir()
    env = flwr_env(tmp_path / "flwr-home")
    # The walkthrough passes --disable-runtime-dependency-installation itself; prove it does.
    env.pop("FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION")
    daemons = Daemons(folder, env)
    yield daemons
    daemons.stop_all()


def _state(deploy: Daemons, node: str, run_id: str, key: str | None = None) -> ClientStateStore:
    """``node``'s state store of this run, opened with its own key (or node ``key``'s)."""
    sealing = read_key_file(deploy.cwd / (key or node) / "state.key")
    return ClientStateStore(deploy.cwd / node / "state" / f"run-{run_id}", sealing)


def _recommend(deploy: Daemons) -> list[str]:
    """`fedrec node recommend` on node-1 for USER with the run's latest checkpoint."""
    out = deploy.ok(
        "fedrec", "node", "recommend", "--data-dir", "node-1/data", "--user", USER,
        "--model", f"runs/{RUN}", "--state-dir", "node-1/state",
        "--state-key-file", "node-1/state.key", "-k", str(K),
    )  # fmt: skip
    return [line.split()[1] for line in out.splitlines()]


def _ranked(deploy: Daemons, state: ClientState, seen: set[str]) -> list[str]:
    """USER's top K, computed here: the latest checkpoint's items, the private factor."""
    run_dir = deploy.cwd / "runs" / RUN
    ckpt = load_checkpoint(run_dir)
    ids = read_catalog(run_dir / "catalog.json").raw_ids
    index = NodeStore(deploy.cwd / "node-1" / "data").rows().user_ids.index(USER)
    factors = np.asarray(ckpt.tensors["item_factors"], dtype=np.float32)
    scores = factors @ state.user_factors[index] + ckpt.tensors["item_bias"]
    order = sorted((i for i in range(len(ids)) if ids[i] not in seen), key=lambda i: -scores[i])
    return [ids[i] for i in order[:K]]


def _ledger_rounds(state: ClientState) -> int:
    return sum(int(n) for _, _, n in state.user_ledger["secagg"])


def test_a_tls_federation_of_own_data_nodes_survives_kills_and_learns_from_feedback(
    tmp_path: Path, deploy: Daemons
) -> None:
    # Prepare: the files of the walkthrough, made by `fedrec certs` (paths relative to deploy/).
    deploy.ok("fedrec", "certs", "ca", "--out", "certs/ca")
    deploy.ok(
        "fedrec", "certs", "server", "--ca", "certs/ca", "--out", "certs/superlink",
        "--host", "127.0.0.1", "--host", "localhost", "--host", "superlink.example.org",
    )  # fmt: skip
    deploy.ok("fedrec", "certs", "node", "--out", "certs/nodes", "--count", "4")
    for node in NODES:
        # On the node: the key that seals its private state.
        deploy.ok("fedrec", "node", "keygen", "--out", f"{node}/state.key")
    ratings = write_tiny_ratings(tmp_path / "ratings.csv", n_users=6, n_items=20, per_user=10)
    seen = set(own_data(deploy, ratings, NODES, n_items=20)[USER])
    port = free_port()
    deploy.start("superlink", *tls_superlink(port))
    wait_port(port)
    deploy.connect("tls", port, root_certificates=deploy.cwd / "certs/ca/ca.crt")

    # Execute: register the three nodes, start them (the documented way: `fedrec node start`,
    # which restarts a node that fails) and the unregistered fourth.
    ids = {}
    for node in NODES:
        out = deploy.ok(
            "flwr", "supernode", "register", f"certs/nodes/{node}.pub", "tls", "--format", "json"
        )
        ids[node] = str(json.loads(out)["node-id"])  # `list` gives ids as strings
        deploy.start(
            node,
            "fedrec", "node", "start", "--backoff", "1", "--backoff-max", "8", "--",
            *tls_supernode(
                port,
                node,
                "--node-config",
                f"data-dir='{deploy.cwd / node / 'data'}' "
                f"state-dir='{deploy.cwd / node / 'state'}' "
                f"state-key-file='{deploy.cwd / node / 'state.key'}' device='auto'",
            ),
        )  # fmt: skip
    deploy.start("node-4", *tls_supernode(port, "node-4"))

    # Assert: the registered nodes are online; node-4 was turned away and never listed.
    deploy.wait_online("tls", list(ids.values()))
    refused = deploy.wait("node-4", timeout=90)
    assert refused not in (None, 0), deploy.diagnostics()  # exited, and not cleanly
    for text in ("Exit Code: 305", "Failed to activate SuperNode"):
        assert text in deploy.log("node-4"), deploy.diagnostics()
    assert sorted(n["node-id"] for n in deploy.supernodes("tls")) == sorted(ids.values())

    # Execute: the run; node-3's SuperNode (with its ClientApp) killed as it starts round 1.
    runs = deploy.cwd / "runs"
    run_dir = runs / RUN
    seen_log = len(deploy.log("node-3"))
    deploy.start(
        "deploy-run",
        "fedrec", "deploy", "run", "tls", "--app", str(ROOT), "--run-config",
        f"data-source='node' data-path='{deploy.cwd / 'catalog.json'}' text-tower='off' "
        f"output-dir='{runs}' run-name='{RUN}' num-rounds=2 fraction-train=1.0 "
        f"min-train-nodes={len(NODES)} embedding-dim=8 round-timeout=300 "
        "user-dp='secagg' user-clip=0.5 user-noise-multiplier=0.5",
    )  # fmt: skip
    deploy.wait_log("node-3", "Start `flwr-clientapp` process", after=seen_log, timeout=180)
    node_killed_at = time.monotonic()
    deploy.kill_supervised("node-3")

    # ... and the SuperLink killed right after checkpoint 1, its ServerApp with it.
    deadline = time.monotonic() + 600
    while latest_round(run_dir) is None and time.monotonic() < deadline:
        assert deploy.started["deploy-run"].poll() is None, deploy.diagnostics(3000)
        time.sleep(0.2)
    assert latest_round(run_dir) == 1, deploy.diagnostics(3000)
    print(f"round 1 checkpointed {time.monotonic() - node_killed_at:.0f} s after the node kill")
    link_killed_at = time.monotonic()
    deploy.stop("superlink")

    # Between the rounds, on node-1: the device's list, then the user likes its first item.
    run_id = (run_dir / "RUN_ID").read_text()
    after_1 = _state(deploy, "node-1", run_id).load()
    assert after_1 is not None and after_1.rounds_trained == [1], deploy.diagnostics()
    before = _recommend(deploy)
    assert before == _ranked(deploy, after_1, seen), before
    liked = before[0]
    deploy.ok("fedrec", "node", "record", "--data-dir", "node-1/data", "--user", USER,
              "--item", liked, "--like")  # fmt: skip
    # The node's training data, as its ClientApp reads it each round, holds the like.
    data = node_client_data(resolve_config({}, {}), NodeStore(deploy.cwd / "node-1/data"))
    catalog_ids = NodeStore(deploy.cwd / "node-1/data").catalog().raw_ids
    mine = data.train_items[data.train_users == data.user_ids.index(USER)]
    assert liked in {catalog_ids[i] for i in mine.tolist()}

    # The SuperLink started again on its database: the registrations are still there.
    seen_log = len(deploy.log("node-1"))
    deploy.start("superlink-restarted", *tls_superlink(port))
    wait_port(port)
    assert sorted(n["node-id"] for n in deploy.supernodes("tls")) == sorted(ids.values())
    deploy.wait_log("node-1", "Connection successful", after=seen_log)

    # Assert: the run completed by itself, resumed by a second ServerApp after the restart.
    assert deploy.wait("deploy-run", timeout=900) == 0, deploy.diagnostics(3000)
    print(f"killed SuperLink: run finished {time.monotonic() - link_killed_at:.0f} s after")
    log = deploy.log("deploy-run")
    assert "lost its ServerApp; submitting it again to resume it" in log, log[-3000:]
    assert f"resuming {run_dir} from round 1" in log, log[-3000:]
    assert ": finished:completed" in log, log[-3000:]
    # fedrec's line of round 2 reaches the operator (round 1's may be lost with the SuperLink
    # it was streamed through): node-3 is back.
    assert "fedrec: round 2/2 | clients 3 ok/0 failed/0 rejected | devices 3 cpu/0 cuda" in log
    # The node supervisor restarted the killed SuperNode (the SuperLink refused it first);
    # every node is still up, none was given up on.
    assert "fedrec node start: flower-supernode exited with status" in deploy.log("node-3")
    assert all(deploy.started[node].poll() is None for node in NODES), deploy.diagnostics()

    # Assert: the checkpoints. Each round once, round 2 by another ServerApp; the server
    # got SecAgg+'s sum of 2 then 3 nodes; user-level ε spent; no federated evaluation (its
    # metrics would not be covered by DP); the server's run folder holds no ratings.
    ckpt = load_checkpoint(run_dir)
    history = ckpt.manifest["history"]
    assert ckpt.round == 2 and [row["round"] for row in history] == [1, 2]
    assert [row["clients-ok"] for row in history] == [2, 3]
    assert [row["clients-failed"] for row in history] == [1, 0]
    assert [row["secagg-survivors"] for row in history] == [2, 3]
    assert history[0]["server-incarnation"] != history[1]["server-incarnation"]
    assert 0 < history[0]["user-epsilon"] < history[1]["user-epsilon"]
    assert 0 < history[0]["epsilon"] <= history[1]["epsilon"]
    assert not any(k.startswith("eval/") for row in history for k in row)
    user = ckpt.manifest["user_privacy"]
    assert user["placement"] == "secagg" and user["epsilon"] == history[1]["user-epsilon"]
    assert not list(runs.rglob("*.csv")) and not list(runs.rglob("*.sqlite"))

    # Assert: each node's privacy ledger, sealed on its own disk. Node-3 trained round 2
    # only; ε grew with every round a node trained; another node's key opens nothing.
    states = {node: _state(deploy, node, run_id).load() for node in NODES}
    for node, state in states.items():
        assert state is not None and state.run_id == run_id, node
        trained = [2] if node == "node-3" else [1, 2]
        assert state.rounds_trained == trained and _ledger_rounds(state) == len(trained), node
        assert state.epsilon > 0 and state.user_epsilon["secagg"] > 0, node
        assert state.user_factors.shape == (2, 8), node  # one private factor per own user
        sealed = (deploy.cwd / node / "state" / f"run-{run_id}" / STATE_FILE).read_bytes()
        assert b"rounds_trained" not in sealed and state.user_factors.tobytes() not in sealed
        assert stat.S_IMODE((deploy.cwd / node / "state").stat().st_mode) == 0o700
    after_2 = states["node-1"]
    assert after_2 is not None
    assert after_2.epsilon > after_1.epsilon
    assert after_2.user_epsilon["secagg"] > after_1.user_epsilon["secagg"]
    with pytest.raises(SealError):
        _state(deploy, "node-1", run_id, key="node-2").load()

    # Assert: the device ranks with the round-2 model and the user's private factor as
    # retrained in round 2 (on the like); the liked item, now the user's, is not offered.
    assert not np.allclose(after_2.user_factors, after_1.user_factors)
    after = _recommend(deploy)
    assert after == _ranked(deploy, after_2, seen | {liked}), (before, after)
    assert liked not in after, (before, after)
    print(f"{USER} on node-1: {before} before the like of {liked}, {after} after round 2")

    # A run that fails (here: a setting no ServerApp accepts) exits non-zero.
    failed = deploy.run(
        "fedrec", "deploy", "run", "tls", "--app", str(ROOT), "--run-config",
        f"strategy='nope' output-dir='{runs}' run-name='bad'",
    )  # fmt: skip
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert ": finished:failed" in failed.stdout, failed.stdout
