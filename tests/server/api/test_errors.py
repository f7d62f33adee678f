"""One error format for every error: problem+json with a stable code, each one documented."""

import re
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from fedrec.server.api.deps import get_recommender
from fedrec.server.api.main import create_app
from fedrec.server.api.settings import Settings
from tests.server.api.conftest import make_run

URL = "/v1/recommendations/cold-start"
PROBLEM = "application/problem+json"


def _is_problem(r: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    body = r.json()
    assert body["status"] == status and body["code"] == code
    assert isinstance(body["detail"], str) and body["type"].endswith(code)
    return dict(body)


def test_every_kind_of_refusal_is_a_problem(client: httpx.Client) -> None:
    json_ct = {"content-type": "application/json"}
    _is_problem(client.get("/no/such/route"), 404, "not_found")
    _is_problem(client.get("/v1/items/999"), 404, "unknown_item")
    _is_problem(client.post(URL, content=b"{", headers=json_ct), 400, "invalid_json")
    _is_problem(client.post(URL, content=b"{}"), 415, "unsupported_media_type")
    _is_problem(client.post(URL, content=b"x" * 300_000, headers=json_ct), 413, "payload_too_large")
    _is_problem(client.get("/health", headers={"x-pad": "x" * 20_000}), 431, "headers_too_large")
    _is_problem(client.post(URL, json={"text": "x"}), 422, "text_not_supported")
    _is_problem(client.post(URL, json={"text": "x", "genres": ["Polka"]}), 422, "unknown_genre")
    _is_problem(client.post("/v1/admin/items", json={}), 403, "admin_disabled")


def test_a_validation_error_says_where_and_echoes_nothing(client: httpx.Client) -> None:
    secret = "s" * 5_000
    body = _is_problem(
        client.post(URL, json={"k": True, "text": 7, "x": secret}), 422, "validation_error"
    )
    errors = body["errors"]
    assert isinstance(errors, list)
    assert {tuple(e["loc"]) for e in errors} >= {("body", "k"), ("body", "text")}
    assert secret not in str(body)


def test_405_lists_every_method_of_the_path(client_with_admin: httpx.Client) -> None:
    r = client_with_admin.post("/v1/admin/items/x1")
    _is_problem(r, 405, "method_not_allowed")
    assert {m.strip() for m in r.headers["allow"].split(",")} == {"PUT", "DELETE"}


def test_503_without_a_model(empty_client: httpx.Client) -> None:
    _is_problem(empty_client.get("/v1/model"), 503, "no_model")


def test_a_failure_is_a_500_problem_not_a_reset(tmp_path: Path) -> None:
    app = create_app(Settings(model_path=str(make_run(tmp_path / "run")), load_in_background=False))

    def broken() -> None:
        raise RuntimeError("boom")

    app.dependency_overrides[get_recommender] = broken
    with TestClient(app, raise_server_exceptions=False) as client:
        body = _is_problem(client.get("/v1/model"), 500, "internal_error")
    assert "boom" not in str(body)


def test_every_status_a_route_answers_is_in_the_schema(client: httpx.Client) -> None:
    schema = client.get("/openapi.json").json()
    ops = {(m.upper(), p): op for p, item in schema["paths"].items() for m, op in item.items()}
    assert all(op.get("operationId") for op in ops.values())
    for status in ("400", "413", "422", "500", "503"):
        assert status in ops[("POST", URL)]["responses"]
    for status in ("401", "403", "409"):
        assert status in ops[("POST", "/v1/admin/items")]["responses"]
    problem = ops[("GET", "/v1/items/{item_id}")]["responses"]["404"]["content"]
    assert list(problem) == [PROBLEM]
    k = schema["components"]["schemas"]["ColdStartRequest"]["properties"]["k"]
    assert {"type": "integer", "maximum": 5}.items() <= k["anyOf"][0].items()
    assert schema["components"]["securitySchemes"]["AdminToken"]["name"] == "X-Admin-Token"
    assert ops[("POST", "/v1/admin/items")]["security"] == [{"AdminToken": []}]
    assert "security" not in ops[("POST", URL)]


def test_docs_load_their_assets_from_the_service(client: httpx.Client) -> None:
    for page in ("/docs", "/redoc"):
        html = client.get(page).text
        assets = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert assets and "http" not in html
        for asset in assets:
            r = client.get(asset)
            assert r.status_code == 200 and len(r.content) > 1_000, asset


@pytest.mark.parametrize("page", ["/openapi.json", "/docs"])
def test_the_contract_pages_answer_without_a_model(empty_client: httpx.Client, page: str) -> None:
    assert empty_client.get(page).status_code == 200
