"""What a node fetches from the service: the catalogue and the signed global item model.

Both come over the service's HTTP API (``GET /v1/catalog``, ``GET /v1/item-model`` and its
manifest). The item model is verified before it is kept, and again each time it is loaded,
against a public key the node pinned: the operator's (``--public-key``), or the service's
key as first seen, which later downloads must then match. Kept under the node's data folder:

    <data-dir>/item-model/item-model.safetensors   the artifact, as signed
    <data-dir>/item-model/manifest.json            its manifest (hash, signature, version)
    <data-dir>/item-model/signing-key.pub          the pinned Ed25519 key (base64, raw)

A pull sends the kept artifact's ETag, so an unchanged model costs a bodiless 304. Files
are replaced atomically, the folder is 0700: a failed pull leaves the previous model.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

from fedrec.client.localstore import NodeStore
from fedrec.client.ranking import GlobalItems
from fedrec.shared.data import catalog_version
from fedrec.shared.data.sources import write_atomic
from fedrec.shared.errors import ConfigError, DataError, SignatureError
from fedrec.shared.item_model import ItemModel, sha256_hex, verify_item_model

MODEL_DIR = "item-model"
ARTIFACT = "item-model.safetensors"
MANIFEST = "manifest.json"
PINNED_KEY = "signing-key.pub"
TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Pulled:
    """The outcome of a pull: the model version kept, and whether it changed."""

    model_version: str
    updated: bool
    sha256: str


def _client(server: str, client: httpx.Client | None) -> httpx.Client:
    return client or httpx.Client(base_url=server.rstrip("/"), timeout=TIMEOUT_S)


def _get(client: httpx.Client, path: str, **kwargs: object) -> httpx.Response:
    try:
        response = client.get(path, **kwargs)  # type: ignore[arg-type]
    except httpx.HTTPError as err:
        raise ConfigError(f"cannot reach the service at {client.base_url}: {err}") from err
    if response.status_code not in (200, 304):
        raise ConfigError(
            f"GET {path} from {client.base_url} answered {response.status_code}: "
            f"{response.text[:300]}"
        )
    return response


def _write_atomic(path: Path, data: bytes) -> None:
    """:func:`~fedrec.shared.data.sources.write_atomic` into a private (0700) folder."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    write_atomic(path, data)


def fetch_catalog(store: NodeStore, server: str, *, client: httpx.Client | None = None) -> str:
    """Import the service's catalogue into ``store``; returns its version."""
    http = _client(server, client)
    response = _get(http, "/v1/catalog")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "catalog.json"
        path.write_bytes(response.content)
        version = store.import_catalog(path)
    etag = response.headers.get("etag", "").strip('"')
    if etag and etag != version:
        raise DataError(
            f"the catalogue's version {version[:12]} is not the one the service announced "
            f"({etag[:12]}): the download was altered",
            path=str(store.data_dir),
        )
    return version


def _pinned_key(folder: Path, public_key: bytes | None, http: httpx.Client) -> bytes:
    """The key to verify with: given (and pinned), already pinned, or the service's, pinned now."""
    pin_file = folder / PINNED_KEY
    pinned = base64.b64decode(pin_file.read_text()) if pin_file.is_file() else None
    if public_key is not None:
        if pinned is not None and pinned != public_key:
            raise SignatureError(
                f"{pin_file} pins another signing key than the one given; remove it only "
                "if the service's key was rotated on purpose"
            )
        key = public_key
    elif pinned is not None:
        key = pinned
    else:
        served = _get(http, "/v1/signing-key").json()
        if served.get("ephemeral"):
            raise SignatureError(
                "the service signs with an ephemeral key (it changes at every restart): "
                "give the service a signing key file, or pin one with --public-key"
            )
        key = base64.b64decode(served["public_key"])
    if pinned is None:
        _write_atomic(pin_file, base64.b64encode(key) + b"\n")
    return key


def pull_item_model(
    data_dir: Path,
    server: str,
    *,
    public_key: bytes | None = None,
    client: httpx.Client | None = None,
) -> Pulled:
    """Fetch the served item model into ``data_dir`` if it changed, verified before it is kept."""
    folder = Path(data_dir) / MODEL_DIR
    http = _client(server, client)
    key = _pinned_key(folder, public_key, http)
    headers = {}
    kept = folder / ARTIFACT
    kept_sha = ""
    if kept.is_file() and (folder / MANIFEST).is_file():
        kept_sha = sha256_hex(kept.read_bytes())
        headers["If-None-Match"] = f'"{kept_sha}"'
    response = _get(http, "/v1/item-model", headers=headers)
    if response.status_code == 304:
        model = load_pulled_model(data_dir)
        return Pulled(model.model_version, False, kept_sha)
    blob = response.content
    version = response.headers.get("x-model-version", "")
    # The manifest of the same version: a hot reload between the two requests answers 412.
    manifest = _get(
        http, "/v1/item-model/manifest", headers={"X-Model-Version": version} if version else {}
    ).json()
    if manifest.get("sha256") != sha256_hex(blob):
        raise SignatureError("the item model's hash is not its manifest's: download it again")
    model = verify_item_model(blob, manifest["signature"]["value"], key)
    _write_atomic(kept, blob)
    _write_atomic(folder / MANIFEST, json.dumps(manifest, indent=2).encode())
    return Pulled(model.model_version, True, manifest["sha256"])


def load_pulled_model(data_dir: Path) -> ItemModel:
    """The kept item model, verified again against the pinned key (tampering at rest fails)."""
    folder = Path(data_dir) / MODEL_DIR
    missing = [n for n in (ARTIFACT, MANIFEST, PINNED_KEY) if not (folder / n).is_file()]
    if missing:
        raise DataError(
            f"no pulled item model ({', '.join(missing)} missing); fetch it with "
            "`fedrec node pull --server URL`",
            path=str(folder),
        )
    manifest = json.loads((folder / MANIFEST).read_text())
    key = base64.b64decode((folder / PINNED_KEY).read_text())
    return verify_item_model((folder / ARTIFACT).read_bytes(), manifest["signature"]["value"], key)


def global_items_of(model: ItemModel, store: NodeStore) -> GlobalItems:
    """``model``'s rows in the order of the node's catalogue, for :mod:`.ranking`.

    Items the service added after training (admin routes) are not in the node's catalogue
    and are left out: a device ranks what it can show.
    """
    catalog = store.catalog()
    version = catalog_version(catalog)
    if model.catalog_sha256 and model.catalog_sha256 != version:
        raise ConfigError(
            f"the node's catalogue is version {version[:12]}, the model's "
            f"{model.catalog_sha256[:12]}; import it with `fedrec node catalog --server URL`"
        )
    row_of = {item: i for i, item in enumerate(model.item_ids)}
    absent = [item for item in catalog.raw_ids if item not in row_of]
    if absent:
        raise ConfigError(
            f"{len(absent)} catalogue item(s) are not in the item model (e.g. {absent[0]!r})"
        )
    rows = np.asarray([row_of[item] for item in catalog.raw_ids], dtype=np.int64)
    return GlobalItems(
        model_version=model.model_version,
        kind=model.kind,
        factors=np.ascontiguousarray(model.factors[rows], dtype=np.float32),
        bias=np.ascontiguousarray(model.bias[rows], dtype=np.float32),
        catalog_version=version,
        content_split=model.content_split,
        implicit_threshold=model.implicit_threshold,
        run_id=model.run_id or None,
    )
