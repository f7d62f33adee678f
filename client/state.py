"""The client's private state on its own disk: user factors and its privacy ledger.

Nothing here is ever sent to the server. It lives in a directory of the node (on an edge
device: ``state-dir`` in the node config; in simulation: under the run directory, one
folder per partition) so it survives restarts of both the client and the server.
Writes are atomic (temp file + ``os.replace``): a crash never leaves half a state.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

from fedrec.shared.privacy import HistoryEntry

_TENSORS = "state.safetensors"
_META = "state.json"


@dataclass
class ClientState:
    """Private per-client state kept between rounds."""

    user_factors: np.ndarray  # float32 [n_local_users, dim]
    accountant_history: list[HistoryEntry] = field(default_factory=list)
    rounds_trained: list[int] = field(default_factory=list)
    epsilon: float = 0.0


def _atomic_write(path: Path, write: object) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)  # type: ignore[operator]
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


class ClientStateStore:
    """Loads and saves one client's :class:`ClientState` in ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def load(self) -> ClientState | None:
        """The saved state, or ``None`` for a client that has never trained."""
        meta_path = self.directory / _META
        if not meta_path.exists():
            return None
        meta = json.loads(meta_path.read_text())
        tensors = load_file(str(self.directory / _TENSORS))
        return ClientState(
            user_factors=tensors["user_factors"],
            accountant_history=[tuple(h) for h in meta["accountant_history"]],  # type: ignore[misc]
            rounds_trained=list(meta["rounds_trained"]),
            epsilon=float(meta["epsilon"]),
        )

    def save(self, state: ClientState) -> None:
        """Persist ``state`` (tensors first, then the JSON that marks it complete)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        _atomic_write(
            self.directory / _TENSORS,
            lambda p: save_file({"user_factors": np.ascontiguousarray(state.user_factors)}, p),
        )
        meta = {
            "accountant_history": [list(h) for h in state.accountant_history],
            "rounds_trained": state.rounds_trained,
            "epsilon": state.epsilon,
        }
        _atomic_write(self.directory / _META, lambda p: Path(p).write_text(json.dumps(meta)))
