"""Cold start from free text and admin-added items, over real HTTP with the real encoder."""

from pathlib import Path

import httpx

from tests.server.api.conftest import ADMIN_TOKEN, serve

URL = "/v1/recommendations/cold-start"


def _ids(resp: httpx.Response) -> list[str]:
    assert resp.status_code == 200, resp.text
    return [i["id"] for i in resp.json()["items"]]


def test_text_only_cold_start_ranks_by_meaning(text_client: httpx.Client) -> None:
    resp = text_client.post(URL, json={"text": "rockets, astronauts and outer space", "k": 2})
    assert set(_ids(resp)) == {"100", "101"}  # the two space films
    because = [i["because"] for i in resp.json()["items"]]
    assert all(b is not None and b.startswith("text: ") for b in because)
    resp = text_client.post(URL, json={"text": "a daring bank robbery", "k": 2})
    assert set(_ids(resp)) == {"104", "105"}


def test_liked_items_and_text_together_and_genre_filter(text_client: httpx.Client) -> None:
    body = {"liked_item_ids": ["102"], "text": "weddings", "k": 1}
    assert _ids(text_client.post(URL, json=body)) == ["103"]
    body = {"text": "love and romance", "genres": ["crime"], "k": 5}
    assert set(_ids(text_client.post(URL, json=body))) == {"104", "105"}
    r = text_client.post(URL, json={"text": "x", "genres": ["Polka"]})
    assert r.status_code == 422 and "Polka" in r.text and "Sci-Fi" in r.text


def test_empty_or_oversized_input_and_truncation_warning(text_client: httpx.Client) -> None:
    assert text_client.post(URL, json={}).status_code == 422
    assert text_client.post(URL, json={"text": "   "}).status_code == 422
    assert text_client.post(URL, json={"text": "", "liked_item_ids": []}).status_code == 422
    assert text_client.post(URL, json={"text": "a" * 10_001}).status_code == 422
    long = "space " * 40  # over the 16-token limit of this server
    resp = text_client.post(URL, json={"text": long, "k": 1})
    assert resp.status_code == 200
    assert any("truncated" in w for w in resp.json()["warnings"])
    short = text_client.post(URL, json={"text": "space", "k": 1}).json()
    assert short["warnings"] == []


def test_text_on_an_mf_only_model_is_a_clear_422(client: httpx.Client) -> None:
    r = client.post(URL, json={"text": "space adventures"})
    assert r.status_code == 422 and "text-tower" in r.json()["detail"]


def test_admin_adds_an_item_recommendable_at_once_and_kept_on_restart(
    text_client: httpx.Client, text_run: Path
) -> None:
    item = {
        "id": "900",
        "title": "Saturn Rising",
        "genres": ["Sci-Fi"],
        "description": "A rocket crew travels through outer space to Saturn.",
    }
    assert text_client.post("/v1/admin/items", json=item).status_code == 401
    bad = {"X-Admin-Token": "wrong"}
    assert text_client.post("/v1/admin/items", json=item, headers=bad).status_code == 401
    ok = {"X-Admin-Token": ADMIN_TOKEN}
    resp = text_client.post("/v1/admin/items", json=item, headers=ok)
    assert resp.status_code == 201 and resp.json()["id"] == "900"
    assert text_client.post("/v1/admin/items", json=item, headers=ok).status_code == 409
    assert text_client.get("/v1/items/900").json()["title"] == "Saturn Rising"
    ids = _ids(text_client.post(URL, json={"text": "a rocket trip to Saturn", "k": 1}))
    assert ids == ["900"]
    # A new server process over the same run serves the added item too.
    restarted = serve(text_run)
    other = next(restarted)
    try:
        assert other.get("/v1/items/900").status_code == 200
    finally:
        restarted.close()


def test_admin_routes_are_off_without_a_token(client: httpx.Client) -> None:
    item = {"id": "x1", "title": "Anything"}
    r = client.post("/v1/admin/items", json=item, headers={"X-Admin-Token": "a"})
    assert r.status_code == 403 and "FEDREC_ADMIN_TOKEN" in r.json()["detail"]
