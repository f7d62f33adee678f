"""A client's state at rest: sealed under the operator's key, tamper-evident, per run, private.

Issue 18: the user factors and privacy ledger were plaintext, editable, shared between runs,
and deleting them silently reset the privacy budget.
"""

import shutil
import stat
from pathlib import Path

import numpy as np
import pytest
from flwr.app import ConfigRecord, Context, Message, RecordDict

from fedrec.client.client_app import build_client_app
from fedrec.client.node_context import state_store
from fedrec.client.sealing import (
    KEY_ENV,
    SealError,
    StateKey,
    node_key,
    read_key_file,
    write_key_file,
)
from fedrec.client.state import ClientState, ClientStateError, ClientStateStore
from fedrec.shared.config import FedRecConfig, resolve_config
from fedrec.shared.data import load_split
from fedrec.shared.errors import ConfigError
from fedrec.shared.models.initial import init_global
from fedrec.shared.serialization import numpy_to_arrays


def _state(rounds: list[int], *, fill: float, epsilon: float) -> ClientState:
    return ClientState(
        user_factors=np.full((2, 4), fill, dtype=np.float32),
        accountant_history=[(1.0, 0.1, 10 * len(rounds))],
        rounds_trained=rounds,
        epsilon=epsilon,
    )


@pytest.fixture
def key(tmp_path: Path) -> StateKey:
    return write_key_file(tmp_path / "keys" / "node.key")


def test_the_sealed_state_round_trips_and_holds_no_plaintext(tmp_path: Path, key: StateKey) -> None:
    store = ClientStateStore(tmp_path / "state" / "run-aaaa", key)
    store.save(_state([1, 2], fill=0.5, epsilon=1.25), previous=_state([1], fill=0.25, epsilon=1))
    got, prev = store.load(), store.load_previous()
    assert got is not None and prev is not None
    assert got.rounds_trained == [1, 2] and got.epsilon == 1.25 and np.all(got.user_factors == 0.5)
    assert prev.rounds_trained == [1] and np.all(prev.user_factors == 0.25)
    sealed = (tmp_path / "state" / "run-aaaa" / "state.sealed").read_bytes()
    for plain in (b"accountant_history", b"epsilon", b"rounds_trained", b"user_factors"):
        assert plain not in sealed


def test_a_flipped_byte_is_refused(tmp_path: Path, key: StateKey) -> None:
    store = ClientStateStore(tmp_path / "state" / "run-aaaa", key)
    store.save(_state([1], fill=1.0, epsilon=2.0))
    path = store.directory / "state.sealed"
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0x01
    path.write_bytes(bytes(blob))
    with pytest.raises(SealError, match="changed after it was written"):
        store.load()
    with pytest.raises(SealError):
        store.start_round(2, run_id="aaaa")
    # The damaged file is never replaced by a save (that would reset the ledger).
    with pytest.raises(SealError):
        store.save(_state([], fill=0.0, epsilon=0.0))
    assert path.read_bytes() == bytes(blob)


def test_a_truncated_file_is_refused(tmp_path: Path, key: StateKey) -> None:
    store = ClientStateStore(tmp_path / "state" / "run-aaaa", key)
    store.save(_state([1], fill=1.0, epsilon=2.0))
    (store.directory / "state.sealed").write_bytes(b"")
    with pytest.raises(SealError, match="not a sealed fedrec state file"):
        store.load()


def test_another_key_is_refused(tmp_path: Path, key: StateKey) -> None:
    ClientStateStore(tmp_path / "state" / "run-aaaa", key).save(_state([1], fill=1, epsilon=2))
    other = write_key_file(tmp_path / "keys" / "other.key")
    with pytest.raises(SealError, match=r"does not open with the state key from .*other\.key"):
        ClientStateStore(tmp_path / "state" / "run-aaaa", other).load()


def test_another_folders_sealed_state_is_refused(tmp_path: Path, key: StateKey) -> None:
    # Same key, but the file is bound to the folder (and so to the run) it was sealed for.
    root = tmp_path / "state"
    ClientStateStore(root / "run-aaaa", key).save(_state([1, 2, 3], fill=1, epsilon=3))
    ClientStateStore(root / "run-bbbb", key).save(_state([1], fill=2, epsilon=1))
    shutil.copy(root / "run-aaaa" / "state.sealed", root / "run-bbbb" / "state.sealed")
    with pytest.raises(SealError):
        ClientStateStore(root / "run-bbbb", key).load()


def test_a_missing_ledger_is_refused_not_reset(tmp_path: Path, key: StateKey) -> None:
    store = ClientStateStore(tmp_path / "state" / "run-aaaa", key)
    store.save(_state([1], fill=1.0, epsilon=2.0))
    shutil.rmtree(store.directory)  # the whole state folder, not just its file
    with pytest.raises(ClientStateError, match="is missing, but its witness"):
        store.start_round(2, run_id="aaaa")
    with pytest.raises(ClientStateError):
        store.save(_state([], fill=0.0, epsilon=0.0))


def test_a_state_without_its_witness_is_refused(tmp_path: Path, key: StateKey) -> None:
    store = ClientStateStore(tmp_path / "state" / "run-aaaa", key)
    store.save(_state([1], fill=1.0, epsilon=2.0))
    store.witness_path.unlink()
    with pytest.raises(ClientStateError, match="witness .* is missing"):
        store.load()


def test_an_older_copy_put_back_is_refused(tmp_path: Path, key: StateKey) -> None:
    # An older sealed state is a valid ciphertext with a smaller epsilon: its witness catches it.
    store = ClientStateStore(tmp_path / "state" / "run-aaaa", key)
    store.save(_state([1], fill=1.0, epsilon=2.0))
    older = (store.directory / "state.sealed").read_bytes()
    store.save(_state([1, 2], fill=2.0, epsilon=3.0))
    (store.directory / "state.sealed").write_bytes(older)
    with pytest.raises(ClientStateError, match="is save 1, but its witness says save 2"):
        store.load()


def test_a_crash_between_the_state_and_its_witness_is_not_a_refusal(
    tmp_path: Path, key: StateKey
) -> None:
    store = ClientStateStore(tmp_path / "state" / "run-aaaa", key)
    store.save(_state([1], fill=1.0, epsilon=2.0))
    witness_after_first = store.witness_path.read_bytes()
    store.save(_state([1, 2], fill=2.0, epsilon=3.0))
    store.witness_path.write_bytes(witness_after_first)  # killed before the witness write
    got = store.load()
    assert got is not None and got.rounds_trained == [1, 2] and got.epsilon == 3.0
    store.save(_state([1, 2, 3], fill=3.0, epsilon=4.0))  # and saving goes on
    assert store.load().rounds_trained == [1, 2, 3]  # type: ignore[union-attr]


def test_a_crash_before_the_first_state_is_a_fresh_start(tmp_path: Path, key: StateKey) -> None:
    store = ClientStateStore(tmp_path / "state" / "run-aaaa", key)
    store.save(_state([1], fill=1.0, epsilon=2.0))
    fresh = ClientStateStore(tmp_path / "state" / "run-bbbb", key)
    fresh._write_witness(0)  # what a first save writes before the state itself
    assert fresh.load() is None
    fresh.save(_state([1], fill=1.0, epsilon=2.0))
    assert fresh.load() is not None


def test_folders_are_0700_and_files_0600(tmp_path: Path, key: StateKey) -> None:
    root = tmp_path / "state"
    store = ClientStateStore(root / "run-aaaa", key)
    store.save(_state([1], fill=1.0, epsilon=2.0))
    for folder in (root, store.directory, store.witness_path.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    for file in (store.directory / "state.sealed", store.witness_path, Path(key.source)):
        assert stat.S_IMODE(file.stat().st_mode) == 0o600, file


def test_a_simulation_makes_one_key_per_run_beside_its_clients(tmp_path: Path) -> None:
    clients = tmp_path / "runs" / "r1" / "clients"
    ClientStateStore(clients / "partition-0").save(_state([1], fill=1, epsilon=1))
    ClientStateStore(clients / "partition-1").save(_state([1], fill=2, epsilon=1))
    key = read_key_file(clients / "state.key")
    assert ClientStateStore(clients / "partition-1", key).load() is not None
    # Another run has its own key: its clients cannot open this run's states.
    other = ClientStateStore(tmp_path / "runs" / "r2" / "clients" / "partition-0")
    other.save(_state([1], fill=1, epsilon=1))
    with pytest.raises(SealError):
        ClientStateStore(clients / "partition-0", other.key).load()


# ------------------------------------------------------------------------ key handling


def test_keygen_never_overwrites_a_key(tmp_path: Path) -> None:
    path = tmp_path / "node.key"
    first = write_key_file(path)
    with pytest.raises(ConfigError, match="never overwritten"):
        write_key_file(path)
    assert read_key_file(path).secret == first.secret
    assert "secret" not in repr(first) and first.secret.hex() not in repr(first)


def test_a_key_file_readable_by_others_or_malformed_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "node.key"
    write_key_file(path)
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        read_key_file(path)
    path.chmod(0o600)
    path.write_text("not a key\n")
    with pytest.raises(ConfigError, match="does not hold a state key"):
        read_key_file(path)
    with pytest.raises(ConfigError, match="no such state key file"):
        read_key_file(tmp_path / "absent.key")


def test_a_node_key_comes_from_its_key_file_or_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "node.key"
    made = write_key_file(path)
    text = path.read_text()
    assert node_key({"state-key-file": str(path)}, {}).secret == made.secret
    assert node_key({}, {KEY_ENV: text}).secret == made.secret
    with pytest.raises(ConfigError, match="no key to seal it with"):
        node_key({}, {})


# ----------------------------------------------------------------- per run, on a node


def _context(tmp_path: Path, **node: object) -> Context:
    config = {"partition-id": 0, "num-partitions": 1, "state-dir": str(tmp_path / "state")}
    return Context(
        run_id=1,
        node_id=1,
        node_config={**config, **node},  # type: ignore[dict-item]
        state=RecordDict(),
        run_config={},
    )


def test_a_node_keeps_one_sealed_state_per_run(tmp_path: Path, key: StateKey) -> None:
    context = _context(tmp_path, **{"state-key-file": key.source})
    cfg = FedRecConfig()
    first, second = state_store(cfg, context, "aaaa"), state_store(cfg, context, "bbbb")
    assert first.directory == tmp_path / "state" / "run-aaaa"
    assert second.directory == tmp_path / "state" / "run-bbbb"
    mine = _state([1, 2], fill=1, epsilon=2)
    mine.run_id = "aaaa"
    first.save(mine)
    assert first.start_round(3, run_id="aaaa") is not None
    assert second.start_round(1, run_id="bbbb") is None  # the second run starts its own
    # A state handed to another run is refused.
    with pytest.raises(ClientStateError, match="state of run aaaa, but this is run bbbb"):
        first.start_round(3, run_id="bbbb")
    with pytest.raises(ValueError, match="server sent no 'run-id'"):
        state_store(cfg, context, None)
    with pytest.raises(ConfigError, match="no key to seal it with"):
        state_store(cfg, _context(tmp_path), "aaaa")


def _ratings(path: Path) -> Path:
    rng = np.random.default_rng(0)
    rows = ["user,item,rating,timestamp"]
    rows += [f"0,{i},4,{1000 + t}" for t, i in enumerate(rng.choice(20, 8, replace=False))]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_a_node_whose_ledger_went_missing_replies_with_a_refusal(
    tmp_path: Path, key: StateKey, loopback_grid: type
) -> None:
    settings = {
        "dataset": "generic",
        "data-path": str(_ratings(tmp_path / "r.csv")),
        "embedding-dim": 4,
        "text-tower": "off",
        "output-dir": str(tmp_path / "runs"),
    }
    cfg = resolve_config({}, settings)
    _, split = load_split(cfg.data)
    grid = loopback_grid(build_client_app(settings), 1)
    grid.contexts[1] = _context(tmp_path, **{"state-key-file": key.source})

    def train(rnd: int) -> Message:
        content = RecordDict(
            {
                "arrays": numpy_to_arrays(init_global(cfg, split.n_items)),
                "config": ConfigRecord({"server-round": rnd, "run-id": "aaaa"}),
            }
        )
        (reply,) = grid.send_and_receive([Message(content, dst_node_id=1, message_type="train")])
        return reply  # type: ignore[no-any-return]

    assert not train(1).has_error()
    shutil.rmtree(tmp_path / "state" / "run-aaaa")
    reply = train(2)
    assert reply.has_error()
    assert "is missing, but its witness" in reply.error.reason
    assert "refusing to train" in reply.error.reason


def test_a_nodes_state_is_flushed_to_disk_and_a_simulations_is_not(
    tmp_path: Path, key: StateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    flushed: list[int] = []
    real_fsync = __import__("os").fsync
    monkeypatch.setattr("os.fsync", lambda fd: flushed.append(fd) or real_fsync(fd))
    node = ClientStateStore(tmp_path / "node" / "run-aaaa", key)
    node.save(_state([1], fill=0.5, epsilon=1.0))
    assert len(flushed) >= 2  # the state and its witness
    simulated = ClientStateStore(tmp_path / "sim" / "partition-0")
    simulated.save(_state([1], fill=0.5, epsilon=1.0))  # makes the run's key (flushed)
    flushed.clear()
    simulated.save(_state([1, 2], fill=0.5, epsilon=1.0))
    assert flushed == []
    got = simulated.load()  # still sealed and complete
    assert got is not None and got.epsilon == 1.0
    assert simulated.copy_to(tmp_path / "copy").durable is False


def test_an_older_copy_put_back_between_a_read_and_a_save_is_refused(
    tmp_path: Path, key: StateKey
) -> None:
    # The save after a round's start reuses that read only while neither file changed.
    store = ClientStateStore(tmp_path / "state" / "run-aaaa", key)
    store.save(_state([1], fill=0.1, epsilon=1.0))
    old = (store.directory / "state.sealed").read_bytes()
    store.save(_state([1, 2], fill=0.2, epsilon=2.0))
    assert store.start_round(3) is not None  # the round's start reads and checks
    replaced = store.directory / "state.sealed.old"
    replaced.write_bytes(old)
    replaced.replace(store.directory / "state.sealed")
    with pytest.raises(ClientStateError, match="another copy"):
        store.save(_state([1, 2, 3], fill=0.3, epsilon=3.0))
