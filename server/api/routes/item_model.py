"""The served item model for ranking on the device: a signed, versioned safetensors file.

``GET /v1/item-model`` is the artifact (its ETag is its SHA-256); the manifest beside it
holds the hash and the detached Ed25519 signature of the artifact's bytes; the public key
to pin is at ``/v1/signing-key``. A node verifies with
:func:`fedrec.shared.item_model.verify_item_model` before it ranks with the model.
"""

from __future__ import annotations

import base64
import threading
from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import Response

from fedrec.server.api.deps import ModelVersionPin, ServedDep, check_pin
from fedrec.server.api.openapi import problems
from fedrec.server.api.routing import ApiRoute
from fedrec.server.api.schemas import ItemModelManifest, SignaturePublic, SigningKeyPublic
from fedrec.server.api.signing import SigningKey
from fedrec.server.api.state import ServedModel
from fedrec.shared.config import config_of_checkpoint
from fedrec.shared.data import catalog_json, catalog_version
from fedrec.shared.item_model import FORMAT, ItemModel, pack_item_model, sha256_hex, sign

router = APIRouter(tags=["item model"], route_class=ApiRoute, responses=problems())
SAFETENSORS = "application/octet-stream"


@dataclass(frozen=True)
class _Artifact:
    revision: int
    blob: bytes
    sha256: str
    signature: str
    n_items: int
    embedding_dim: int


_cache_lock = threading.Lock()


def _artifact(served: ServedModel, key: SigningKey) -> _Artifact:
    """The packed, signed item model of ``served``, rebuilt only after admin changes."""
    rec = served.recommender
    with _cache_lock:
        cached: _Artifact | None = served.cache.get("item-model")
        if cached is not None and cached.revision == rec.revision:
            return cached
        revision, ids, q, b = rec.revision, list(rec.ids), rec.q, rec.b
        manifest = served.checkpoint.manifest
        model = ItemModel(
            served.version,
            ids,
            q,
            b,
            kind="cooccurrence" if manifest.get("kind") == "cooccurrence" else "mf",
            content_split=rec.content_split,
            implicit_threshold=config_of_checkpoint(
                manifest.get("config", {})
            ).data.implicit_threshold,
            catalog_sha256=str(manifest.get("catalog_sha256", "")),
            run_id=_run_identity(served),
        )
        blob = pack_item_model(model)
        signature = sign(blob, key.private)
        made = _Artifact(revision, blob, sha256_hex(blob), signature, len(ids), int(q.shape[1]))
        served.cache["item-model"] = made
        return made


def _run_identity(served: ServedModel) -> str:
    """The trained run's RUN_ID, which names a node's private state of that run."""
    path = served.checkpoint.path.parent.parent / "RUN_ID"
    return path.read_text().strip() if path.is_file() else ""


def _key(request: Request) -> SigningKey:
    return request.app.state.signing_key  # type: ignore[no-any-return]


@router.get(
    "/v1/item-model",
    operation_id="getItemModel",
    summary="The served item model (safetensors), for ranking on the device",
    response_class=Response,
    responses={
        200: {
            "content": {SAFETENSORS: {"schema": {"type": "string", "format": "binary"}}},
            "description": "Tensors item_factors [n, d] and item_bias [n]; metadata holds "
            "format, model_version and item_ids (JSON). Verify its signature before use.",
        },
        **problems(503),
    },
)
def item_model(served: ServedDep, request: Request, pin: ModelVersionPin = None) -> Response:
    """The artifact; its ETag is its SHA-256 (``If-None-Match`` answers 304)."""
    check_pin(served, pin)
    art = _artifact(served, _key(request))
    digest = base64.b64encode(bytes.fromhex(art.sha256)).decode("ascii")
    return Response(
        art.blob,
        media_type=SAFETENSORS,
        headers={
            "ETag": f'"{art.sha256}"',
            "Repr-Digest": f"sha-256=:{digest}:",
            "Content-Disposition": 'attachment; filename="item-model.safetensors"',
            "X-Model-Version": served.version,
        },
    )


@router.get(
    "/v1/item-model/manifest",
    operation_id="getItemModelManifest",
    summary="Hash, size and detached signature of the item model",
    responses=problems(503),
)
def item_model_manifest(
    served: ServedDep, request: Request, pin: ModelVersionPin = None
) -> ItemModelManifest:
    """What to check the artifact against: its SHA-256 and its Ed25519 signature."""
    check_pin(served, pin)
    key = _key(request)
    art = _artifact(served, key)
    return ItemModelManifest(
        format=FORMAT,
        model_version=served.version,
        sha256=art.sha256,
        size_bytes=len(art.blob),
        n_items=art.n_items,
        embedding_dim=art.embedding_dim,
        signature=SignaturePublic(algorithm="Ed25519", key_id=key.key_id, value=art.signature),
    )


@router.get(
    "/v1/signing-key",
    operation_id="getSigningKey",
    summary="The public key that signs item models (pin it)",
)
def signing_key(request: Request) -> SigningKeyPublic:
    """The Ed25519 public key, raw (base64) and PEM, with its id."""
    key = _key(request)
    return SigningKeyPublic(
        algorithm="Ed25519",
        key_id=key.key_id,
        public_key=key.public_b64,
        pem=key.public_pem,
        ephemeral=key.ephemeral,
    )


@router.get(
    "/v1/catalog",
    operation_id="getCatalog",
    summary="The trained run's catalogue file (fedrec-catalog/1), for a node to import",
    response_class=Response,
    responses={
        200: {
            "content": {"application/json": {"schema": {"type": "object"}}},
            "description": "The catalogue the model's rows follow, as a run's catalog.json "
            "holds it; its ETag is its version (the SHA-256 of this text).",
        },
        **problems(503),
    },
)
def catalog_file(served: ServedDep, pin: ModelVersionPin = None) -> Response:
    """The catalogue a node imports (`fedrec node catalog --server URL`) before it trains."""
    check_pin(served, pin)
    text = catalog_json(served.checkpoint.catalog)
    return Response(
        text.encode("utf-8"),
        media_type="application/json",
        headers={"ETag": f'"{catalog_version(served.checkpoint.catalog)}"'},
    )
