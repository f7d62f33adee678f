"""The node's state key, and sealed (encrypted, authenticated) private files.

A client's private state -- user factors and privacy ledger -- is sealed with AES-256-GCM
under a key the operator controls: on an edge node the file named by the node config's
``state-key-file``, else the environment variable ``FEDREC_STATE_KEY``; a node that keeps
state (``state-dir``) without either refuses to start training. In a simulation the key is
generated once per run next to the clients' state folders (``<run>/clients/state.key``):
all clients run on the one machine that also holds the data, so it guards against edits and
mix-ups, not against whoever owns that disk.

Every sealed file is bound to what it is and which folder it belongs to (GCM's associated
data), so one client's sealed state cannot be passed off as another's, or as its witness.
A flipped byte, a truncated file, a file sealed under another key or for another place all
fail to open with :class:`SealError`; nothing is ever read from them.

Keys are 32 random bytes from the OS, written as one line of URL-safe base64. Key files
must not be readable by group or others; sealed files are written 0600 and the folders
holding them 0700.
"""

from __future__ import annotations

import base64
import binascii
import os
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from fedrec.shared.errors import ConfigError, FedRecError

KEY_ENV = "FEDREC_STATE_KEY"
KEY_FILE_CONFIG = "state-key-file"  # the node-config key naming the key file
SIMULATION_KEY = "state.key"  # a simulation's per-run key, in the clients' state root
FILE_MODE = 0o600
DIR_MODE = 0o700
_MAGIC = b"FRSEAL1\n"
_NONCE = 12


class SealError(FedRecError):
    """A sealed file cannot be opened: changed, damaged, or sealed under another key."""


@dataclass(frozen=True)
class StateKey:
    """An AES-256-GCM key and where it came from (for error messages; never the key)."""

    secret: bytes
    source: str

    def __repr__(self) -> str:  # a key must never end up in a log line
        return f"StateKey(source={self.source!r})"

    @classmethod
    def parse(cls, text: str, *, source: str) -> StateKey:
        """A key from its URL-safe base64 text (what :func:`write_key_file` writes)."""
        try:
            secret = base64.urlsafe_b64decode(text.strip().encode("ascii"))
        except (binascii.Error, UnicodeEncodeError, ValueError):
            secret = b""
        if len(secret) != 32:
            raise ConfigError(
                f"{source} does not hold a state key (32 bytes in URL-safe base64, one line); "
                "make one with `fedrec node keygen --out FILE`"
            )
        return cls(secret, source)


def private_dir(path: Path) -> Path:
    """``path`` and any missing parents created, and ``path`` itself made 0700."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    if stat.S_IMODE(path.stat().st_mode) != DIR_MODE:
        path.chmod(DIR_MODE)  # mkdir's mode is filtered by the umask
    return path


def _check_private(path: Path) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ConfigError(
            f"{path}: the state key file is readable by others (mode {mode:o}); "
            f"restrict it with `chmod 600 {path}`"
        )


def read_key_file(path: Path) -> StateKey:
    """The key in ``path``; refused if missing, malformed, or open to group or others."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"{path}: no such state key file; make one with `fedrec node keygen --out {path}`"
        )
    _check_private(path)
    return StateKey.parse(path.read_text(), source=str(path))


def write_key_file(path: Path) -> StateKey:
    """A fresh key written to ``path`` (0600); an existing file is never replaced.

    Written to a temporary file and linked into place, so a reader never sees half a key
    and two processes creating it at once end up sharing the one that won.
    """
    path = Path(path).expanduser()
    private_dir(path.parent)
    secret = AESGCM.generate_key(bit_length=256)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(base64.urlsafe_b64encode(secret).decode("ascii") + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.link(tmp, path)  # fails if the file exists: keys are never overwritten
    except FileExistsError:
        raise ConfigError(f"{path} already exists; a state key is never overwritten") from None
    finally:
        os.unlink(tmp)
    return StateKey(secret, str(path))


def simulation_key(root: Path) -> StateKey:
    """The per-run key of a simulation's client states in ``root``, made on first use."""
    path = Path(root) / SIMULATION_KEY
    if not path.exists():
        try:
            return write_key_file(path)
        except ConfigError:
            pass  # another client process made it first: use theirs
    return read_key_file(path)


def node_key(node_config: Mapping[str, object], environ: Mapping[str, str]) -> StateKey:
    """The state key of a node: its ``state-key-file``, else ``$FEDREC_STATE_KEY``."""
    path = node_config.get(KEY_FILE_CONFIG)
    if path:
        return read_key_file(Path(str(path)))
    text = environ.get(KEY_ENV)
    if text:
        return StateKey.parse(text, source=f"${KEY_ENV}")
    raise ConfigError(
        "this node keeps private state (state-dir) but has no key to seal it with: add "
        f"{KEY_FILE_CONFIG}=/path/to/key to --node-config (make the key with `fedrec node "
        f"keygen --out /path/to/key`) or set {KEY_ENV}"
    )


def seal(key: StateKey, plaintext: bytes, *, bound_to: str) -> bytes:
    """``plaintext`` encrypted and authenticated, bound to ``bound_to`` (what and where)."""
    nonce = os.urandom(_NONCE)
    return _MAGIC + nonce + AESGCM(key.secret).encrypt(nonce, plaintext, bound_to.encode())


def unseal(key: StateKey, blob: bytes, *, bound_to: str, path: Path) -> bytes:
    """The plaintext of :func:`seal`'s ``blob``, or :class:`SealError` saying why not."""
    if not blob.startswith(_MAGIC) or len(blob) < len(_MAGIC) + _NONCE + 16:
        raise SealError(
            f"{path} is not a sealed fedrec state file (damaged, truncated, or written by "
            "another program); refusing to use it"
        )
    nonce = blob[len(_MAGIC) : len(_MAGIC) + _NONCE]
    try:
        return AESGCM(key.secret).decrypt(nonce, blob[len(_MAGIC) + _NONCE :], bound_to.encode())
    except InvalidTag:
        raise SealError(
            f"{path} does not open with the state key from {key.source}: it was changed "
            "after it was written, belongs to another folder, or was sealed under another "
            "key; refusing to use it (restore the file or the key it was written with)"
        ) from None


def write_sealed(
    path: Path, key: StateKey, plaintext: bytes, *, bound_to: str, durable: bool = True
) -> None:
    """Seal ``plaintext`` into ``path`` (0600), atomically, and durably unless told not to.

    ``durable=False`` skips the flush to disk: the file is still replaced atomically, so a
    killed process leaves the old or the new file, but an operating-system crash may lose
    the write (for simulated clients, whose run dies with the machine anyway).
    """
    blob = seal(key, plaintext, bound_to=bound_to)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:  # mkstemp makes it 0600
            fh.write(blob)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())  # durable before it becomes visible
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def read_sealed(path: Path, key: StateKey, *, bound_to: str) -> bytes:
    """The plaintext sealed in ``path`` (see :func:`unseal`)."""
    return unseal(key, Path(path).read_bytes(), bound_to=bound_to, path=Path(path))
