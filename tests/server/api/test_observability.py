"""Request ids, access logs and Prometheus metrics, over real HTTP."""

import json
import logging

import httpx
import pytest


def test_a_request_id_is_echoed_or_made(client: httpx.Client) -> None:
    given = client.get("/health", headers={"X-Request-ID": "trace-42.a"})
    assert given.headers["x-request-id"] == "trace-42.a"
    made = client.get("/health").headers["x-request-id"]
    bogus = client.get("/health", headers={"X-Request-ID": "x" * 500}).headers["x-request-id"]
    assert made and bogus and made != bogus and len(bogus) <= 128


def test_errors_carry_the_request_id_in_body_and_header(client: httpx.Client) -> None:
    for r in (
        client.get("/v1/items/999", headers={"X-Request-ID": "r-1"}),
        client.post(
            "/v1/recommendations/cold-start",
            content=b"x" * 300_000,
            headers={"X-Request-ID": "r-1", "content-type": "application/json"},
        ),
    ):
        assert r.headers["x-request-id"] == "r-1" and r.json()["request_id"] == "r-1"


def test_each_request_is_one_structured_access_line(
    client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="fedrec.access"):
        client.get("/v1/items/11/similar", params={"k": 2}, headers={"X-Request-ID": "log-1"})
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "fedrec.access"]
    mine = [line for line in lines if line["request_id"] == "log-1"]
    assert len(mine) == 1
    assert mine[0]["route"] == "/v1/items/{item_id}/similar" and mine[0]["status"] == 200
    assert mine[0]["duration_ms"] >= 0


def test_metrics_count_by_route_template_with_the_model_version(client: httpx.Client) -> None:
    for item in ("10", "11", "nope"):
        client.get(f"/v1/items/{item}")
    client.get("/no/such/path/123")
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert 'route="/v1/items/{item_id}",status="200"' in text
    assert 'route="/v1/items/{item_id}",status="404"' in text
    assert 'route="unmatched"' in text and "/no/such/path" not in text
    assert (
        'fedrec_http_request_duration_seconds_bucket{le="0.005",method="GET",route="/v1/items/{item_id}"}'
        in text
    )
    assert 'fedrec_model_info{model_version="tiny@r3"} 1.0' in text
    assert "fedrec_model_ready 1.0" in text and "fedrec_model_reloads_total" in text
