"""The signed item model for on-device ranking, downloaded and verified over real HTTP."""

import base64
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fedrec.shared.errors import SignatureError
from fedrec.shared.item_model import sha256_hex, verify_item_model
from tests.server.api.conftest import BIAS, FACTORS, make_run, serve


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("key") / "signing.pem"
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.write_bytes(pem)
    return path


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory, key_file: Path) -> Iterator[httpx.Client]:
    run = make_run(tmp_path_factory.mktemp("runs") / "tiny")
    yield from serve(run, signing_key_path=str(key_file))


def _pinned(client: httpx.Client) -> bytes:
    key = client.get("/v1/signing-key").json()
    assert key["algorithm"] == "Ed25519" and key["ephemeral"] is False
    return base64.b64decode(key["public_key"])


def test_the_node_verifies_and_loads_the_served_item_model(signed: httpx.Client) -> None:
    public = _pinned(signed)
    blob = signed.get("/v1/item-model")
    manifest = signed.get("/v1/item-model/manifest").json()
    assert blob.headers["etag"] == f'"{sha256_hex(blob.content)}"' == f'"{manifest["sha256"]}"'
    assert manifest["size_bytes"] == len(blob.content) and manifest["n_items"] == 6
    model = verify_item_model(blob.content, manifest["signature"]["value"], public)
    assert model.model_version == "tiny@r3" == manifest["model_version"]
    assert model.item_ids == [str(10 + i) for i in range(6)]
    np.testing.assert_array_equal(model.factors, FACTORS)
    np.testing.assert_array_equal(model.bias, BIAS)


def test_a_tampered_artifact_or_another_key_is_rejected(signed: httpx.Client) -> None:
    public = _pinned(signed)
    blob = bytearray(signed.get("/v1/item-model").content)
    signature = signed.get("/v1/item-model/manifest").json()["signature"]["value"]
    blob[-1] ^= 0x01
    with pytest.raises(SignatureError):
        verify_item_model(bytes(blob), signature, public)
    blob[-1] ^= 0x01
    stranger = (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    with pytest.raises(SignatureError):
        verify_item_model(bytes(blob), signature, stranger)
    verify_item_model(bytes(blob), signature, public)  # untouched, it verifies


def test_the_download_is_a_304_while_current(signed: httpx.Client) -> None:
    etag = signed.get("/v1/item-model").headers["etag"]
    again = signed.get("/v1/item-model", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""


def test_without_a_key_file_the_key_is_marked_ephemeral(client: httpx.Client) -> None:
    assert client.get("/v1/signing-key").json()["ephemeral"] is True


def test_a_bad_key_file_is_a_clear_error(tmp_path: Path) -> None:
    from fedrec.server.api.signing import load_signing_key
    from fedrec.shared.errors import ConfigError

    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    with pytest.raises(ConfigError, match="openssl genpkey"):
        load_signing_key(str(bad))
