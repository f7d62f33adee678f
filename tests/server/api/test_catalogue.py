"""Catalogue pages and search, filtered similar items, and batch cold start, over real HTTP."""

import httpx


def test_pages_cover_the_catalogue_once(client: httpx.Client) -> None:
    seen, offset = [], 0
    while offset is not None:
        page = client.get("/v1/items", params={"offset": offset, "limit": 4}).json()
        assert page["total"] == 6 and len(page["items"]) <= 4
        seen += [i["id"] for i in page["items"]]
        offset = page["next_offset"]
    assert seen == [str(10 + i) for i in range(6)]


def test_title_search_and_genre_filter(client: httpx.Client) -> None:
    found = client.get("/v1/items", params={"q": "MOVIE 4"}).json()
    assert [i["id"] for i in found["items"]] == ["14"] and found["total"] == 1
    comedy = client.get("/v1/items", params={"genre": "comedy"}).json()
    assert [i["id"] for i in comedy["items"]] == ["13", "14", "15"]
    assert client.get("/v1/items", params={"genre": "Polka"}).json()["code"] == "unknown_genre"
    assert client.get("/v1/items", params={"limit": 101}).status_code == 422
    assert client.get("/v1/items", params={"q": "x" * 101}).status_code == 422


def test_similar_pages_excludes_and_filters(client: httpx.Client) -> None:
    url = "/v1/items/10/similar"
    first = [i["id"] for i in client.get(url, params={"k": 2}).json()["items"]]
    second = [i["id"] for i in client.get(url, params={"k": 2, "offset": 2}).json()["items"]]
    everything = [i["id"] for i in client.get(url, params={"k": 5}).json()["items"]]
    assert first + second == everything[:4] and first == ["11", "12"]
    skipped = client.get(url, params={"k": 2, "exclude": ["11"]}).json()["items"]
    assert [i["id"] for i in skipped] == ["12", "15"]
    comedy = client.get(url, params={"k": 5, "genre": "Comedy"}).json()["items"]
    assert {i["id"] for i in comedy} == {"13", "14", "15"}
    assert client.get(url, params={"exclude": ["nope"]}).json()["code"] == "unknown_item"
    assert client.get(url, params={"exclude": ["1"] * 101}).status_code == 422


def test_a_batch_answers_each_request_on_its_own(client: httpx.Client) -> None:
    body = {
        "requests": [
            {"liked_item_ids": ["10"], "k": 1},
            {"liked_item_ids": ["nope"]},
            {"liked_item_ids": ["13"], "k": 2},
            {"text": "anything"},  # this model has no text towers
        ]
    }
    r = client.post("/v1/recommendations/cold-start/batch", json=body)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [i["id"] for i in results[0]["items"]] == ["12"]
    assert results[1]["error"]["code"] == "unknown_item" and results[1]["items"] == []
    assert len(results[2]["items"]) == 2 and results[2]["error"] is None
    assert results[3]["error"]["code"] == "text_not_supported"
    single = client.post("/v1/recommendations/cold-start", json=body["requests"][2]).json()
    assert single["items"] == results[2]["items"]


def test_a_batch_is_bounded_and_validated_whole(client: httpx.Client) -> None:
    url = "/v1/recommendations/cold-start/batch"
    assert client.post(url, json={"requests": []}).status_code == 422
    many = {"requests": [{"liked_item_ids": ["10"]}] * 33}
    assert client.post(url, json=many).status_code == 422
    for wrong in ({"k": True}, {"k": 6}):  # not an integer; past max_k (5 here)
        bad = {"requests": [{"liked_item_ids": ["10"]}, {**wrong, "liked_item_ids": ["10"]}]}
        assert client.post(url, json=bad).status_code == 422
