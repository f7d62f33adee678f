"""Every endpoint over real HTTP, including the 4xx and 503 answers."""

import httpx


def test_health_names_the_model(client: httpx.Client) -> None:
    assert client.get("/health").json() == {"status": "ok", "model_version": "tiny@r3"}


def test_model_reports_round_metrics_and_privacy(client: httpx.Client) -> None:
    body = client.get("/v1/model").json()
    assert body["round"] == 3 and body["n_items"] == 6 and body["embedding_dim"] == 2
    assert body["privacy"] == {"unit": "record", "epsilon": 1.5, "delta": 1e-5}
    assert body["metrics"]["eval/ndcg@10_full"] == 0.5
    # A DP-trained model answers new users without fold-in (its item rows carry noise).
    assert body["cold_start_fold_in"] is False and body["cold_start_fold_in_weight"] is None


def test_similar_items_known_answer(client: httpx.Client) -> None:
    body = client.get("/v1/items/10/similar", params={"k": 2}).json()
    assert body["item"]["title"] == "Movie 0"
    assert [i["id"] for i in body["items"]] == ["11", "12"]


def test_cold_start_excludes_liked_and_uses_bias(client: httpx.Client) -> None:
    resp = client.post("/v1/recommendations/cold-start", json={"liked_item_ids": ["10"], "k": 3})
    assert resp.status_code == 200
    items = resp.json()["items"]
    ids = [i["id"] for i in items]
    assert "10" not in ids
    assert ids[0] == "12"  # same cluster, larger bias
    assert all(i["because"] == "10" for i in items)
    assert items[0]["score"] >= items[1]["score"] >= items[2]["score"]


def test_cold_start_exclusions(client: httpx.Client) -> None:
    body = {"liked_item_ids": ["10"], "k": 5, "exclude_item_ids": ["12"]}
    ids = [
        i["id"] for i in client.post("/v1/recommendations/cold-start", json=body).json()["items"]
    ]
    assert "12" not in ids and "10" not in ids and len(ids) == 4


def test_bad_requests_get_useful_4xx(client: httpx.Client) -> None:
    r = client.post("/v1/recommendations/cold-start", json={"liked_item_ids": ["10"], "k": 6})
    assert r.status_code == 422 and "at most 5" in r.text
    r = client.post("/v1/recommendations/cold-start", json={"liked_item_ids": []})
    assert r.status_code == 422
    r = client.post("/v1/recommendations/cold-start", json={"liked_item_ids": ["10", "nope"]})
    assert r.status_code == 404 and "nope" in r.json()["detail"]
    r = client.post("/v1/recommendations/cold-start", content=b"not json")
    assert r.status_code == 415  # no Content-Type: application/json
    r = client.post(
        "/v1/recommendations/cold-start",
        content=b"not json",
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 400
    assert client.get("/v1/items/999/similar").status_code == 404
    assert client.get("/v1/items/10/similar", params={"k": 0}).status_code == 422
    assert client.get("/v1/items/11").json() == {
        "id": "11",
        "title": "Movie 1",
        "genres": ["Drama"],
    }


def test_without_a_model_health_says_so_and_routes_503(empty_client: httpx.Client) -> None:
    assert empty_client.get("/health").json()["status"] == "no-model"
    r = empty_client.get("/v1/model")
    assert r.status_code == 503 and "fedrec simulate" in r.json()["detail"]
