"""docs/deployment.md's TLS + SuperNode-authentication walkthrough, command by command.

On 127.0.0.1 with free ports: `fedrec certs` makes the CA, the SuperLink certificate and two
node key pairs; the SuperLink runs with TLS, node authentication and a database; one node is
registered with `flwr supernode register` and connects (through `fedrec node start`), the
other is refused; a two-round `fedrec deploy run` goes over TLS end to end while the
registered SuperNode is killed in round 1 and rejoins by itself; a failing run exits 1; the
registration survives a SuperLink restart. Every process is killed at the end whatever
happens.
"""

import contextlib
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from fedrec.shared.checkpoint import load_checkpoint
from fedrec.simulations.loopback import free_port, wait_port

from .helpers import (
    BIN,
    ROOT,
    Daemons,
    flwr_env,
    process_tree,
    write_tiny_ratings,
)

pytestmark = pytest.mark.slow


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


def _run(daemons: Daemons, *command: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / command[0]), *command[1:]],
        cwd=daemons.cwd,
        env=daemons.env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _nodes(daemons: Daemons) -> list[dict[str, Any]]:
    out = _run(daemons, "flwr", "supernode", "list", "tls", "--format", "json")
    assert out.returncode == 0, out.stdout + out.stderr
    return list(json.loads(out.stdout)["nodes"])


def _wait_online(daemons: Daemons, node_id: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(n["node-id"] == node_id and n["status"] == "online" for n in _nodes(daemons)):
            return
        time.sleep(1)
    raise AssertionError(f"node {node_id} never came online" + daemons.diagnostics())


def test_tls_superlink_admits_registered_nodes_only(tmp_path: Path, deploy: Daemons) -> None:
    # Prepare: the files of the walkthrough, made by `fedrec certs` (paths relative to deploy/).
    for command in (
        ["fedrec", "certs", "ca", "--out", "certs/ca"],
        ["fedrec", "certs", "server", "--ca", "certs/ca", "--out", "certs/superlink"]
        + ["--host", "127.0.0.1", "--host", "localhost", "--host", "superlink.example.org"],
        ["fedrec", "certs", "node", "--out", "certs/nodes", "--name", "node-1", "--name", "node-2"],
        # On the node: the key that seals its private state.
        ["fedrec", "node", "keygen", "--out", "node-1/state.key"],
    ):
        out = _run(deploy, *command)
        assert out.returncode == 0, out.stdout + out.stderr
    port = free_port()
    superlink = (
        "flower-superlink",
        "--ssl-ca-certfile",
        "certs/ca/ca.crt",
        "--ssl-certfile",
        "certs/superlink/server.crt",
        "--ssl-keyfile",
        "certs/superlink/server.key",
        "--enable-supernode-auth",
        "--database",
        "superlink.db",
        "--disable-runtime-dependency-installation",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    )
    deploy.start("superlink", *superlink)
    wait_port(port)
    flwr_home = Path(deploy.env["FLWR_HOME"])
    flwr_home.mkdir(exist_ok=True)  # the SuperLink may have made it
    # `flwr` wants root-certificates as an absolute path.
    (flwr_home / "config.toml").write_text(
        f'[superlink]\ndefault = "tls"\n\n[superlink.tls]\naddress = "127.0.0.1:{port}"\n'
        f'root-certificates = "{deploy.cwd / "certs/ca/ca.crt"}"\n'
    )

    # Execute: register node-1 only, start both nodes.
    registered = _run(
        deploy, "flwr", "supernode", "register", "certs/nodes/node-1.pub", "tls", "--format", "json"
    )
    assert registered.returncode == 0, registered.stdout + registered.stderr + deploy.diagnostics()
    node_id = str(json.loads(registered.stdout)["node-id"])  # `list` gives ids as strings

    def supernode(key: str, *extra: str) -> tuple[str, ...]:
        return (
            "flower-supernode",
            "--root-certificates",
            "certs/ca/ca.crt",
            "--superlink",
            f"127.0.0.1:{port}",
            "--auth-supernode-private-key",
            f"certs/nodes/{key}.key",
            "--port",
            str(free_port()),
            *extra,
        )

    # The documented way to start a node: `fedrec node start` restarts it when it fails.
    deploy.start(
        "supernode-1",
        "fedrec", "node", "start", "--backoff", "1", "--backoff-max", "8", "--",
        *supernode(
            "node-1",
            "--node-config",
            f"partition-id=0 num-partitions=1 state-dir='{tmp_path / 'state-1'}' "
            f"state-key-file='{deploy.cwd / 'node-1/state.key'}' device='auto'",
        ),
    )  # fmt: skip
    deploy.start("supernode-2", *supernode("node-2"))

    # Assert: node-1 is online, node-2 was turned away and never listed.
    _wait_online(deploy, node_id)
    refused = deploy.wait("supernode-2", timeout=90)
    assert refused not in (None, 0), deploy.diagnostics()  # exited, and not cleanly
    for text in ("Exit Code: 305", "Failed to activate SuperNode"):
        assert text in deploy.log("supernode-2"), deploy.diagnostics()
    assert [n["node-id"] for n in _nodes(deploy)] == [node_id]

    # Execute: two rounds over TLS (the ServerApp connects back to 127.0.0.1 over TLS too),
    # submitted and followed by `fedrec deploy run`; the SuperNode is killed (SIGKILL, with
    # its ClientApp) as soon as it starts training round 1.
    data = write_tiny_ratings(tmp_path / "ratings.csv", n_users=4, n_items=20, per_user=10)
    runs = tmp_path / "runs"
    seen = len(deploy.log("supernode-1"))
    deploy.start(
        "deploy-run",
        "fedrec", "deploy", "run", "tls", "--app", str(ROOT), "--run-config",
        f"num-rounds=2 dataset='generic' data-path='{data}' output-dir='{runs}' run-name='tls' "
        "min-train-nodes=1 embedding-dim=8 personalize-epochs=1 round-timeout=120",
    )  # fmt: skip
    deploy.wait_log("supernode-1", "Start `flwr-clientapp` process", after=seen, timeout=120)
    killed_at = time.monotonic()
    (daemon,) = psutil.Process(deploy.started["supernode-1"].pid).children()
    for proc in process_tree(daemon.pid):
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()

    # Assert: the supervisor restarted the node, the SuperLink took it back, the run
    # completed and `fedrec deploy run` said so with status 0.
    assert deploy.wait("deploy-run", timeout=400) == 0, deploy.diagnostics()
    rejoin = deploy.log("supernode-1")[seen:]
    assert "fedrec node start: flower-supernode exited with status" in rejoin, rejoin
    assert "run " in deploy.log("deploy-run") and ": finished:completed" in deploy.log("deploy-run")
    assert "fedrec: round 2/2 | clients 1 ok" in deploy.log("deploy-run"), deploy.diagnostics()
    ckpt = load_checkpoint(runs / "tls")
    assert ckpt.round == 2 and ckpt.manifest["history"][-1]["clients-ok"] == 1
    print(f"killed SuperNode: run finished {time.monotonic() - killed_at:.0f} s after the kill")

    # A run that fails (here: a setting no ServerApp accepts) exits non-zero.
    failed = _run(
        deploy, "fedrec", "deploy", "run", "tls", "--app", str(ROOT), "--run-config",
        f"strategy='nope' output-dir='{runs}' run-name='bad'",
    )  # fmt: skip
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert ": finished:failed" in failed.stdout, failed.stdout

    # Execute: restart the SuperLink on the same database.
    seen = len(deploy.log("supernode-1"))
    deploy.stop("superlink")
    deploy.start("superlink-restarted", *superlink)
    wait_port(port)

    # Assert: node-1's registration survived; its signed requests are accepted again.
    assert [n["node-id"] for n in _nodes(deploy)] == [node_id]
    deploy.wait_log("supernode-1", "Connection successful", after=seen)
    assert deploy.started["supernode-1"].poll() is None, deploy.diagnostics()
