"""docs/deployment.md, "Node-local data and feedback": its `fedrec` commands, in its order.

Run as a user runs them (subprocess, real entry point, one working folder); the round in
between is trained through the ClientApp's task layer on the node's own store.
"""

import base64
import shlex
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fedrec.client.dataview import node_client_data
from fedrec.client.localstore import NodeStore
from fedrec.client.sealing import read_key_file
from fedrec.client.state import ClientStateStore
from fedrec.client.task import train_round
from fedrec.shared.checkpoint import run_id, save_catalog, save_checkpoint
from fedrec.shared.config import resolve_config
from fedrec.shared.data import read_catalog
from fedrec.shared.models.initial import init_global
from tests.server.api.conftest import serve

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ["fedrec catalog --items items.csv --out catalog.json"]
NODE = [
    "fedrec node keygen --out node-1/state.key",
    "fedrec node catalog --data-dir node-1/data catalog.json",
    "fedrec node import --data-dir node-1/data history.csv --hold-out-newest",
    "fedrec node record --data-dir node-1/data --user me --item 50 --rating 5",
    "fedrec node record --data-dir node-1/data --user me --item 181 --like",
    "fedrec node record --data-dir node-1/data --user me --item 172 --view",
]
RECOMMEND = (
    "fedrec node recommend --data-dir node-1/data --user me --model runs/node-run "
    "--state-dir node-1/state --state-key-file node-1/state.key"
)
# The same through the service (`fedrec serve` of the run, signing key set); the docs'
# port is the default one, the test's a free one.
DOCS_URL = "http://127.0.0.1:8000"
OVER_HTTP = [
    f"fedrec node catalog --data-dir node-2/data --server {DOCS_URL}",
    f"fedrec node pull --data-dir node-1/data --server {DOCS_URL}",
    "fedrec node recommend --data-dir node-1/data --user me --state-dir node-1/state "
    "--state-key-file node-1/state.key",
]


def _fedrec(line: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    args = shlex.split(line)
    assert args[0] == "fedrec"
    return subprocess.run(
        [sys.executable, "-m", "fedrec", *args[1:]],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


def test_the_docs_list_exactly_these_commands() -> None:
    docs = (ROOT / "docs" / "deployment.md").read_text()
    section = docs.split("### Node-local data and feedback")[1].split("\n## ")[0]
    for line in [*CATALOGUE, *NODE, RECOMMEND, *OVER_HTTP]:
        assert f"\n{line}\n" in section, line


def _train_one_round(cwd: Path) -> None:
    """What the ClientApp does in a round, on node-1's store; the server's checkpoint."""
    cfg = resolve_config({}, {"embedding-dim": 4, "text-tower": "off"})
    run_dir = cwd / "runs" / "node-run"
    catalog = read_catalog(cwd / "catalog.json")
    save_catalog(run_dir, catalog)
    identity = run_id(run_dir)
    key = read_key_file(cwd / "node-1" / "state.key")
    state = ClientStateStore(cwd / "node-1" / "state" / f"run-{identity}", key)
    data = node_client_data(cfg, NodeStore(cwd / "node-1" / "data"))
    reply = train_round(
        cfg,
        data,
        init_global(cfg, len(catalog)),
        state,
        server_round=1,
        seed=1,
        device=torch.device("cpu"),
        run_id=identity,
    )
    save_checkpoint(
        run_dir,
        round=1,
        tensors=reply.arrays,
        run_name="node-run",
        kind="federated",
        config=cfg.to_run_config(),
        metrics={},
        history=[],
        privacy=None,
    )


IDS = [1, 50, 100, 172, 181, 200, 258, 300, 313, 400, 500, 600]


def _node_after_one_round(cwd: Path) -> None:
    """The operator's items file, the device's history (user "me"), the docs' node commands
    and one round trained on the node."""
    (cwd / "items.csv").write_text(
        "item,title,genres\n" + "".join(f"{i},Film {i} (1990),Drama\n" for i in IDS)
    )
    (cwd / "history.csv").write_text(
        "user,item,rating,timestamp\nme,1,4,100\nme,100,3,200\nme,200,5,300\nme,300,4,400\n"
    )
    for line in [*CATALOGUE, *NODE]:
        out = _fedrec(line, cwd)
        assert out.returncode == 0, f"{line}\n{out.stdout}{out.stderr}"
    _train_one_round(cwd)


def test_a_node_records_feedback_trains_on_it_and_ranks_on_the_device(tmp_path: Path) -> None:
    # Prepare + execute: the documented commands, a round, then the recommendation.
    _node_after_one_round(tmp_path)
    ids = IDS
    top = _fedrec(RECOMMEND, tmp_path)

    # Assert: every interaction is in the store, feedback trains, the newest import is held
    # out; the key and folders are private; the list skips all the user's items.
    assert top.returncode == 0, top.stdout + top.stderr
    store = NodeStore(tmp_path / "node-1" / "data")
    data = node_client_data(resolve_config({}, {}), store)
    catalog = store.catalog()
    trained = {catalog.raw_ids[i] for i in data.train_items.tolist()}
    assert trained == {"1", "100", "200", "50", "181", "172"}
    assert catalog.raw_ids[int(data.test_items[0])] == "300"
    assert stat.S_IMODE((tmp_path / "node-1" / "state.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "node-1" / "state").stat().st_mode) == 0o700
    listed = [line.split()[1] for line in top.stdout.splitlines()]
    assert len(listed) == len(ids) - 7 and not set(listed) & {*trained, "300"}
    scores = [float(line.split()[2]) for line in top.stdout.splitlines()]
    assert scores == sorted(scores, reverse=True) and np.all(np.isfinite(scores))


def test_bad_input_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "items.csv").write_text("item,title\n1,A\n")
    assert _fedrec(CATALOGUE[0], tmp_path).returncode == 0
    assert _fedrec(NODE[1], tmp_path).returncode == 0
    cases = {
        "fedrec node record --data-dir node-1/data --user me --item 2 --like": "not in the node",
        "fedrec node record --data-dir node-1/data --user me --item 1": "exactly one of",
        "fedrec node import --data-dir node-1/data absent.csv": "no such ratings file",
        "fedrec node keygen --out items.csv": "never overwritten",
    }
    for line, message in cases.items():
        out = _fedrec(line, tmp_path)
        assert out.returncode == 2 and message in out.stdout + out.stderr, line


def _key_file(cwd: Path) -> Path:
    """The service's signing key (as `openssl genpkey -algorithm ed25519` writes it)."""
    path = cwd / "signing.pem"
    key = Ed25519PrivateKey.generate()
    pkcs8, pem = serialization.PrivateFormat.PKCS8, serialization.Encoding.PEM
    path.write_bytes(key.private_bytes(pem, pkcs8, serialization.NoEncryption()))
    return path


def test_a_node_fetches_the_catalogue_and_a_verified_model_over_http(tmp_path: Path) -> None:
    # Prepare: a node after a round, the run served with a signing key.
    _node_after_one_round(tmp_path)
    served = serve(tmp_path / "runs" / "node-run", signing_key_path=str(_key_file(tmp_path)))
    client = next(served)
    url = str(client.base_url).rstrip("/")
    try:
        # Execute: the documented commands against the live service, a second pull.
        outs = [_fedrec(line.replace(DOCS_URL, url), tmp_path) for line in OVER_HTTP]
        again = _fedrec(OVER_HTTP[1].replace(DOCS_URL, url), tmp_path)
    finally:
        next(served, None)
    local = _fedrec(RECOMMEND, tmp_path)

    # Assert: the fetched catalogue is the run's; the pulled model ranks exactly as the
    # run's own checkpoint; an unchanged model is not downloaded again.
    for line, out in zip(OVER_HTTP, outs, strict=True):
        assert out.returncode == 0, f"{line}\n{out.stdout}{out.stderr}"
    assert NodeStore(tmp_path / "node-2" / "data").catalog() == read_catalog(
        tmp_path / "catalog.json"
    )
    assert " updated " in outs[1].stdout and " current " in again.stdout
    assert outs[2].stdout == local.stdout and len(local.stdout.splitlines()) == len(IDS) - 7
    folder = tmp_path / "node-1" / "data" / "item-model"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_a_pulled_model_changed_on_disk_is_refused(tmp_path: Path) -> None:
    _node_after_one_round(tmp_path)
    served = serve(tmp_path / "runs" / "node-run", signing_key_path=str(_key_file(tmp_path)))
    url = str(next(served).base_url).rstrip("/")
    try:
        assert _fedrec(OVER_HTTP[1].replace(DOCS_URL, url), tmp_path).returncode == 0
        artifact = tmp_path / "node-1" / "data" / "item-model" / "item-model.safetensors"
        blob = bytearray(artifact.read_bytes())
        blob[-1] ^= 0x01
        artifact.write_bytes(bytes(blob))
        out = _fedrec(OVER_HTTP[2], tmp_path)
        # Another key given for an already pinned service is refused too.
        stranger = base64.b64encode(bytes(32)).decode()
        other = _fedrec(f"{OVER_HTTP[1].replace(DOCS_URL, url)} --public-key {stranger}", tmp_path)
    finally:
        next(served, None)
    assert out.returncode != 0 and "does not verify" in out.stdout + out.stderr
    assert other.returncode != 0 and "pins another signing key" in other.stdout + other.stderr
