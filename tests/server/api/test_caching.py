"""ETag, Cache-Control, 304 and version pinning, over real HTTP."""

from pathlib import Path

import httpx

from tests.server.api.conftest import ADMIN_TOKEN, make_text_run, serve


def test_a_current_copy_is_a_304_without_a_body(client: httpx.Client) -> None:
    first = client.get("/v1/items/10/similar", params={"k": 2})
    etag = first.headers["etag"]
    assert etag.startswith('"') and first.headers["cache-control"] == "no-cache"
    again = client.get("/v1/items/10/similar", params={"k": 2}, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    weak = client.get(
        "/v1/items/10/similar", params={"k": 2}, headers={"If-None-Match": f"W/{etag}"}
    )
    assert weak.status_code == 304
    other = client.get("/v1/items/10/similar", params={"k": 3}, headers={"If-None-Match": etag})
    assert other.status_code == 200 and other.headers["etag"] != etag
    assert "etag" not in client.get("/health").headers  # probes are never cached


def test_an_admin_change_changes_the_etag(tmp_path: Path) -> None:
    run = make_text_run(tmp_path / "runs" / "text", tmp_path / "cache")
    server = serve(run, admin_token=ADMIN_TOKEN)
    client = next(server)
    try:
        etag = client.get("/v1/items").headers["etag"]
        item = {"id": "fresh", "title": "A fresh film"}
        assert (
            client.post(
                "/v1/admin/items", json=item, headers={"X-Admin-Token": ADMIN_TOKEN}
            ).status_code
            == 201
        )
        r = client.get("/v1/items", headers={"If-None-Match": etag})
        assert r.status_code == 200 and r.json()["total"] == 7
    finally:
        server.close()


def test_a_request_can_pin_the_model_version(client: httpx.Client) -> None:
    ok = client.get("/v1/model", headers={"X-Model-Version": "tiny@r3"})
    assert ok.status_code == 200 and ok.headers["x-model-version"] == "tiny@r3"
    r = client.post(
        "/v1/recommendations/cold-start",
        json={"liked_item_ids": ["10"]},
        headers={"X-Model-Version": "tiny@r2"},
    )
    assert r.status_code == 412 and r.json()["code"] == "model_version_mismatch"
    assert r.headers["x-model-version"] == "tiny@r3"
