"""The service's Ed25519 signing key: loaded from a PEM file, or made for this process only."""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fedrec.shared.errors import ConfigError
from fedrec.shared.item_model import key_id

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SigningKey:
    """The private key and what clients pin: the raw public key and its id."""

    private: Ed25519PrivateKey
    public_raw: bytes
    public_pem: str
    key_id: str
    ephemeral: bool

    @property
    def public_b64(self) -> str:
        """The raw 32-byte public key, base64."""
        return base64.b64encode(self.public_raw).decode("ascii")


def load_signing_key(path: str) -> SigningKey:
    """The key in the PEM file at ``path``; with no path, a new key for this process only."""
    if path:
        try:
            private = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as err:
            raise ConfigError(
                f"FEDREC_SIGNING_KEY_PATH={path!r} is not a readable unencrypted PEM private key "
                f"({err}); make one with `openssl genpkey -algorithm ed25519 -out {path}`"
            ) from None
        if not isinstance(private, Ed25519PrivateKey):
            raise ConfigError(f"{path} holds a {type(private).__name__}, not an Ed25519 key")
        ephemeral = False
    else:
        private = Ed25519PrivateKey.generate()
        ephemeral = True
        logger.warning(
            "no FEDREC_SIGNING_KEY_PATH: item models are signed with a key made for this "
            "process, which clients cannot pin across restarts; set it for production"
        )
    public = private.public_key()
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")
    return SigningKey(private, raw, pem, key_id(raw), ephemeral)
