"""The client's private state on its own disk: user factors and its privacy ledger.

Nothing here is ever sent to the server. It lives in a folder of the node (on an edge
device: ``state-dir/run-<run id>`` in the node config; in simulation: one folder per
partition under the run directory) so it survives restarts of both the client and the server.

Layout, under the state root (the node's ``state-dir``; a simulation's ``<run>/clients``)::

    <name>/state.sealed   the commit point: the current user factors and, after a training
                          round, the factors from *before* that round, plus both states'
                          metadata and ledgers; sealed and replaced atomically
    witness/<name>        the second place: how many times ``<name>``'s state was saved
    state.key             simulation only: the run's state key

Sealed (:mod:`fedrec.client.sealing`): AES-256-GCM under the operator's key, bound to the
folder's name, so that a changed byte, another client's file or another key is refused
rather than read; folders are 0700 and files 0600.

A missing or replaced ledger is refused, never taken for a fresh one. The *witness*, a sealed
generation counter kept outside the state folder, is written before a state folder's first
save and after every save; the sealed state carries its own generation. Loading compares the
two: a witness without its state means the state was deleted; a state without a witness, or
one older than its witness, was put back from elsewhere (an older copy would carry an
older, smaller ε). The state may be one save ahead of its witness, the mark of a crash
between the two writes. Only wiping the whole state root (witnesses too) goes unnoticed on
the device: that is indistinguishable from a new device, and needs the key to be of any use
(docs/privacy.md, "State at rest").

One file holds everything, replaced with ``os.replace``: a killed client (or a killed
simulation, whose clients die with it) leaves either the old or the new state, never new
factors next to old metadata.

Why the state before the latest round is kept: the server checkpoints after each round. If
it dies after the clients trained round ``r`` but before checkpoint ``r`` was written, the
restarted server runs round ``r`` again. Training it again on top of the already-updated
factors would count round ``r`` twice; :meth:`ClientStateStore.start_round` instead rolls
the factors back to where round ``r`` started (see docs/architecture.md, "Resume"). A client
that trained the lost round but is not sampled when it is run again learns of the loss later:
every state records which server incarnation (one server process) it trained its latest round
for, and the server says which incarnation asks and which round it resumed from.
"""

from __future__ import annotations

import json
import logging
import shutil
import struct
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from safetensors.numpy import load as load_tensors
from safetensors.numpy import save as save_tensors

from fedrec.client.sealing import (
    StateKey,
    private_dir,
    read_sealed,
    simulation_key,
    write_sealed,
)
from fedrec.client.state_record import ClientState, ClientStateError, state_from, state_meta

logger = logging.getLogger(__name__)

STATE_FILE = "state.sealed"
WITNESS_DIR = "witness"
_FORMAT = "fedrec-client-state/3"
_PREVIOUS = "previous."  # prefix of the snapshot's tensor names in the tensor file
_UNSEALED = ("state.safetensors", "state.json")  # what versions before sealing wrote


def _was_committed(committed: Mapping[str, tuple[int, int]], token: str, rnd: int) -> bool:
    span = committed.get(token)
    return span is not None and span[0] <= rnd <= span[1]


class ClientStateStore:
    """Loads and saves one client's :class:`ClientState` in ``directory``, sealed.

    ``key`` seals it (:mod:`fedrec.client.sealing`); without one the store belongs to a
    simulation and uses the run's key in ``directory``'s parent, made on first save. A
    node's store is flushed to disk on every save; a simulation's is replaced atomically
    but not flushed (``durable=False`` in :func:`~fedrec.client.sealing.write_sealed`).
    """

    def __init__(
        self, directory: Path, key: StateKey | None = None, *, durable: bool | None = None
    ) -> None:
        self.directory = Path(directory)
        self._key = key
        # A simulation passes its run's key (read once for all its clients) but durable=False.
        self.durable = key is not None if durable is None else durable
        self._witness_path = self.directory.parent / WITNESS_DIR / self.directory.name
        self._folders_made = False
        # The generation of the last successful read and the files' identity then: a save
        # right after a read (the round's start) need not open and check them again.
        self._seen: tuple[int, tuple[int, ...]] | None = None

    @property
    def key(self) -> StateKey:
        """The key this store seals with (a simulation's is made here on first use)."""
        if self._key is None:
            self._key = simulation_key(self.directory.parent)
        return self._key

    @property
    def witness_path(self) -> Path:
        """Where this state's witness lives: outside its folder, in the state root."""
        return self._witness_path

    def _bound(self, what: str) -> str:
        return f"{_FORMAT}:{what}:{self.directory.name}"

    def _witness(self) -> int | None:
        path = self.witness_path
        if not path.exists():
            return None
        data = json.loads(read_sealed(path, self.key, bound_to=self._bound("witness")))
        return int(data["generation"])

    def _write_witness(self, generation: int) -> None:
        if not self._folders_made:
            private_dir(self.witness_path.parent)
        payload = json.dumps({"generation": generation}).encode()
        write_sealed(
            self.witness_path,
            self.key,
            payload,
            bound_to=self._bound("witness"),
            durable=self.durable,
        )

    def _refuse(self, why: str) -> ClientStateError:
        return ClientStateError(
            f"{self.directory}: {why}; refusing to train: a fresh or older ledger would spend "
            "the privacy budget again on records whose releases were already seen. Restore "
            "the state folder and its witness together, or start a new run."
        )

    def _read(self) -> tuple[ClientState, ClientState | None, int] | None:
        """(current, state before the latest round, generation); ``None`` if never saved.

        Checks the sealed state against its witness first (see the module docstring).
        """
        path = self.directory / STATE_FILE
        unsealed = [n for n in _UNSEALED if (self.directory / n).exists()]
        if unsealed:
            raise self._refuse(
                f"{', '.join(unsealed)} is an unsealed state of an earlier fedrec version, "
                "which cannot be told apart from an edited one"
            )
        has_witness = self.witness_path.exists()
        if not path.exists():
            if not has_witness:
                return None
            if self._witness() == 0:  # killed before its first state was written
                return None
            raise self._refuse(
                f"{STATE_FILE}, which holds this client's factors and privacy ledger, is "
                f"missing, but its witness ({self.witness_path}) says it was saved"
            )
        blob = read_sealed(path, self.key, bound_to=self._bound("state"))
        (size,) = struct.unpack("<Q", blob[:8])
        header = json.loads(blob[8 : 8 + size])["__metadata__"]
        generation = int(header["generation"])
        witness = self._witness()
        if witness is None:
            raise self._refuse(
                f"its witness ({self.witness_path}) is missing, so this {STATE_FILE} cannot "
                "be told apart from an older copy put back"
            )
        if generation not in (witness, witness + 1):
            raise self._refuse(
                f"{STATE_FILE} is save {generation}, but its witness says save {witness}: "
                "the file was replaced by another copy"
            )
        tensors = load_tensors(blob)
        current = state_from(tensors["user_factors"], json.loads(header["state"]))
        previous = None
        if "previous" in header:
            previous = state_from(
                tensors[_PREVIOUS + "user_factors"], json.loads(header["previous"])
            )
        self._seen = (generation, self._identity())
        return current, previous, generation

    def _identity(self) -> tuple[int, ...]:
        """Inode, size and modification time of the state file and its witness."""
        out: list[int] = []
        for path in (self.directory / STATE_FILE, self.witness_path):
            st = path.stat()
            out += [st.st_ino, st.st_size, st.st_mtime_ns]
        return tuple(out)

    def _generation(self) -> int | None:
        """The saved generation, checked as :meth:`_read` checks it (``None``: never saved).

        Reuses the last read when neither file changed since.
        """
        if self._seen is not None:
            try:
                if self._identity() == self._seen[1]:
                    return self._seen[0]
            except FileNotFoundError:
                pass
        read = self._read()
        return read[2] if read else None

    def load(self) -> ClientState | None:
        """The saved state, or ``None`` for a client that has never trained."""
        read = self._read()
        return read[0] if read else None

    def load_previous(self) -> ClientState | None:
        """The state as it was before the latest training round, when one was kept."""
        read = self._read()
        return read[1] if read else None

    def copy_to(self, root: Path) -> ClientStateStore:
        """A copy of this state, its witness included, under ``root``; same name, same key.

        For work on a throw-away copy (the attack simulations train one and discard it).
        """
        copy = ClientStateStore(Path(root) / self.directory.name, self.key, durable=self.durable)
        if self.directory.exists():
            shutil.copytree(self.directory, private_dir(copy.directory), dirs_exist_ok=True)
        if self.witness_path.exists():
            private_dir(copy.witness_path.parent)
            shutil.copy2(self.witness_path, copy.witness_path)
        return copy

    def save(self, state: ClientState, *, previous: ClientState | None = None) -> None:
        """Persist ``state`` and, if given, ``previous`` (the state before its latest round).

        Both go into one sealed file replaced atomically, between two writes of the
        witness: before a first save (so that deleting the state is noticed) and after.
        A state that fails its checks is never overwritten.
        """
        saved = self._generation()
        generation = saved or 0
        if not self._folders_made:
            private_dir(self.directory.parent)
            private_dir(self.directory)
            private_dir(self.witness_path.parent)
            self._folders_made = True
        if saved is None and not self.witness_path.exists():
            self._write_witness(0)
        tensors = {"user_factors": np.ascontiguousarray(state.user_factors, dtype=np.float32)}
        header = {
            "format": _FORMAT,
            "generation": str(generation + 1),
            "state": json.dumps(state_meta(state)),
        }
        if previous is not None:
            tensors[_PREVIOUS + "user_factors"] = np.ascontiguousarray(
                previous.user_factors, dtype=np.float32
            )
            header["previous"] = json.dumps(state_meta(previous))
        blob = save_tensors(tensors, metadata=header)
        write_sealed(
            self.directory / STATE_FILE,
            self.key,
            blob,
            bound_to=self._bound("state"),
            durable=self.durable,
        )
        self._write_witness(generation + 1)
        self._seen = (generation + 1, self._identity())

    def start_round(
        self,
        server_round: int,
        *,
        resumed_from: int | None = None,
        incarnation: str | None = None,
        committed: Mapping[str, tuple[int, int]] | None = None,
        run_id: str | None = None,
    ) -> ClientState | None:
        """The state that training round ``server_round`` must start from.

        A state written for another run (``run_id``, the server's run identity, differs)
        is refused: budgets and factors are per run, and continuing another run's would
        both misstate this run's ε and train on top of factors it did not produce.

        Normally the saved state. It is rolled back to the state from before its latest
        round ``L`` -- user factors, ``rounds_trained`` and ``incarnation`` -- when ``L``
        belongs to a server run that died before checkpointing it:

        - ``L >= server_round``: the server asks for a round this state has already
          trained, so it lost that round and now runs it again;
        - the server says it is incarnation ``incarnation`` and resumed from round
          ``resumed_from`` (both given), ``L >= resumed_from`` and ``L`` was trained for
          another incarnation: no checkpoint of ``L`` existed when this server started and
          this server did not train it, so ``L`` was lost -- this client was simply not
          sampled when it was run again (``fraction-train < 1``), or that re-run died too.

        - ``committed`` (given by the server: for each earlier process, the first and last
          round it checkpointed) says ``L``'s process never checkpointed ``L``: lost, even
          if later processes resumed past it without sampling this client.

        Without ``resumed_from`` and ``incarnation`` (older servers, direct callers) only
        the first rule applies.

        Privacy accounting is *not* rolled back: the lost run's update may already have
        reached the server (and whoever watches it), so its DP steps stay spent. The
        returned state keeps the newer ``accountant_history``, ``epsilon`` and user-level
        ledger and lists the thrown-away rounds in ``discarded_rounds``.
        """
        read = self._read()
        if read is None:
            return None
        current, previous, _ = read
        if run_id is not None and current.run_id != run_id:
            raise ClientStateError(
                f"{self.directory} holds the state of run {current.run_id or '(unknown)'}, "
                f"but this is run {run_id}; privacy budgets and factors are per run. Point "
                "the client at its own state directory for this run."
            )
        last = current.last_round
        if last is None:
            return current
        repeated = last >= server_round
        if repeated:
            limit = server_round  # the snapshot must come from before the repeated round
        elif (
            resumed_from is not None
            and incarnation is not None
            and last >= resumed_from
            and current.incarnation != incarnation
        ):
            limit = resumed_from  # ... and from before the lost run
        elif (
            committed is not None
            and incarnation is not None
            and current.incarnation is not None
            and current.incarnation != incarnation
            and not _was_committed(committed, current.incarnation, last)
        ):
            limit = last  # ... and from before the lost round
        else:
            return current
        n_prev = len(previous.rounds_trained) if previous is not None else 0
        if (
            previous is None
            or (previous.last_round is not None and previous.last_round >= limit)
            or current.rounds_trained[:n_prev] != previous.rounds_trained
        ):
            asked = f"the server asks for round {server_round}"
            if not repeated:
                asked += f" (resumed from round {resumed_from})"
            raise ClientStateError(
                f"{self.directory}: {asked}, but this client's state has already trained "
                f"rounds {current.rounds_trained} and keeps no state from before round "
                f"{limit}; the state does not belong to this run's checkpoints (point the "
                "client at its own state-dir, or start a new run-name)"
            )
        discarded = current.rounds_trained[n_prev:]
        if repeated:
            logger.warning(
                "%s: round(s) %s were trained but never checkpointed by the server; training "
                "round %d again from the state before them (their privacy cost stays spent)",
                self.directory,
                discarded,
                server_round,
            )
        else:
            logger.warning(
                "%s: round(s) %s were trained for a server run that died before checkpointing "
                "them (this server resumed from round %d); training round %d from the state "
                "before them (their privacy cost stays spent)",
                self.directory,
                discarded,
                resumed_from,
                server_round,
            )
        return ClientState(
            user_factors=previous.user_factors,
            accountant_history=list(current.accountant_history),
            rounds_trained=list(previous.rounds_trained),
            epsilon=current.epsilon,
            discarded_rounds=current.discarded_rounds + discarded,
            incarnation=previous.incarnation,
            user_ledger={k: list(v) for k, v in current.user_ledger.items()},
            user_epsilon=dict(current.user_epsilon),
            user_delta=current.user_delta,
            run_id=current.run_id,
            released=list(current.released),
        )
