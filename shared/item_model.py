"""The global item model as one signed artifact, for ranking on the device.

The service packs what a node needs to rank items itself (item ids, factors, biases and
the model version) into one safetensors file and signs its bytes with Ed25519. A node
pins the service's public key once and verifies every download with it before use: a
tampered or substituted artifact fails :func:`verify_item_model`.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass

import numpy as np
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from safetensors.numpy import load, save

from fedrec.shared.errors import SignatureError

FORMAT = "fedrec-item-model/1"


@dataclass(frozen=True)
class ItemModel:
    """Item ids, factors ``[n, d]`` and biases ``[n]`` of one model version.

    The rest says how a device makes its user vector for these factors (see
    :mod:`fedrec.client.ranking`): the model's kind, a co-occurrence model's (collaborative
    columns, fade), which ratings count as positives, and the trained run's catalogue.
    """

    model_version: str
    item_ids: list[str]
    factors: np.ndarray
    bias: np.ndarray
    kind: str = "mf"
    content_split: tuple[int, float] | None = None
    implicit_threshold: float = 0.0
    catalog_sha256: str = ""
    run_id: str = ""  # the trained run's identity: a node keeps its private state per run


def pack_item_model(model: ItemModel) -> bytes:
    """The safetensors bytes of ``model`` (ids and version in its metadata)."""
    if model.factors.shape[0] != len(model.item_ids) or model.bias.shape != (len(model.item_ids),):
        raise ValueError("item ids, factors and biases disagree on the number of items")
    metadata = {
        "format": FORMAT,
        "model_version": model.model_version,
        "item_ids": json.dumps(model.item_ids),
        "user_side": json.dumps(
            {
                "kind": model.kind,
                "content_split": list(model.content_split) if model.content_split else None,
                "implicit_threshold": model.implicit_threshold,
                "catalog_sha256": model.catalog_sha256,
                "run_id": model.run_id,
            }
        ),
    }
    tensors = {
        "item_factors": np.ascontiguousarray(model.factors, dtype=np.float32),
        "item_bias": np.ascontiguousarray(model.bias, dtype=np.float32),
    }
    return save(tensors, metadata=metadata)


def sha256_hex(blob: bytes) -> str:
    """The content hash the service puts in the ETag and the manifest."""
    return hashlib.sha256(blob).hexdigest()


def sign(blob: bytes, key: Ed25519PrivateKey) -> str:
    """The detached Ed25519 signature of ``blob``, base64."""
    return base64.b64encode(key.sign(blob)).decode("ascii")


def key_id(public_key: bytes) -> str:
    """A short name for a raw 32-byte public key (the first 16 hex digits of its SHA-256)."""
    return hashlib.sha256(public_key).hexdigest()[:16]


def verify_item_model(blob: bytes, signature: str, public_key: bytes) -> ItemModel:
    """The item model in ``blob`` once its signature verifies under the pinned key.

    Raises :class:`SignatureError` for a wrong signature, key or format, so a node never
    ranks with an artifact the service did not sign.
    """
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(base64.b64decode(signature), blob)
    except (InvalidSignature, ValueError) as err:
        raise SignatureError(
            "the item model does not verify against the pinned public key: it was changed "
            "after signing or signed by another key; download it again, do not use it"
        ) from err
    tensors = load(blob)
    metadata = _metadata(blob)
    if metadata.get("format") != FORMAT:
        raise SignatureError(f"unknown item-model format {metadata.get('format')!r}")
    side = json.loads(metadata.get("user_side", "{}"))
    split = side.get("content_split")
    return ItemModel(
        model_version=metadata["model_version"],
        item_ids=list(json.loads(metadata["item_ids"])),
        factors=tensors["item_factors"],
        bias=tensors["item_bias"],
        kind=str(side.get("kind", "mf")),
        content_split=(int(split[0]), float(split[1])) if split else None,
        implicit_threshold=float(side.get("implicit_threshold", 0.0)),
        catalog_sha256=str(side.get("catalog_sha256", "")),
        run_id=str(side.get("run_id", "")),
    )


def _metadata(blob: bytes) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file's header."""
    size = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8 : 8 + size])
    return dict(header.get("__metadata__", {}))
