"""Rate limiting, CORS and rotating admin tokens, over real HTTP."""

import os
import time
from pathlib import Path

import httpx

from tests.server.api.conftest import make_run, serve


def test_a_client_past_its_rate_gets_429_and_the_probes_do_not(tmp_path: Path) -> None:
    server = serve(make_run(tmp_path / "tiny"), rate_limit_per_minute=60, rate_limit_burst=3)
    client = next(server)
    try:
        codes = [client.get("/v1/items/10").status_code for _ in range(5)]
        assert codes[:3] == [200, 200, 200] and codes[3:] == [429, 429]
        r = client.get("/v1/items/10")
        assert r.json()["code"] == "too_many_requests" and int(r.headers["retry-after"]) >= 1
        assert all(client.get("/health").status_code == 200 for _ in range(10))
        time.sleep(1.1)  # one token a second at 60 a minute
        assert client.get("/v1/items/10").status_code == 200
    finally:
        server.close()


def test_no_rate_limit_by_default(client: httpx.Client) -> None:
    assert all(client.get("/v1/items/10").status_code == 200 for _ in range(30))


def test_cors_answers_allowed_origins_only(tmp_path: Path) -> None:
    server = serve(make_run(tmp_path / "tiny"), cors_origins=["https://app.example"])
    client = next(server)
    try:
        pre = client.options(
            "/v1/recommendations/cold-start",
            headers={
                "Origin": "https://app.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type,x-model-version",
            },
        )
        assert pre.status_code == 200
        assert pre.headers["access-control-allow-origin"] == "https://app.example"
        r = client.get("/v1/items/10", headers={"Origin": "https://app.example"})
        assert "etag" in r.headers["access-control-expose-headers"].lower()
        other = client.get("/v1/items/10", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
    finally:
        server.close()


def test_admin_tokens_rotate_through_the_file_without_a_restart(tmp_path: Path) -> None:
    tokens = tmp_path / "admin-tokens"
    tokens.write_text("# current\nold-token\n")
    server = serve(make_run(tmp_path / "tiny"), admin_tokens_file=str(tokens))
    client = next(server)

    def status(token: str) -> int:
        return client.post("/v1/admin/reload", headers={"X-Admin-Token": token}).status_code

    try:
        assert status("old-token") == 200 and status("new-token") == 401
        tokens.write_text("old-token\nnew-token\n")  # both active while clients move
        os.utime(tokens, ns=(time.time_ns(), time.time_ns() + 1_000_000))
        assert status("old-token") == 200 and status("new-token") == 200
        tokens.write_text("new-token\n")
        os.utime(tokens, ns=(time.time_ns(), time.time_ns() + 2_000_000))
        assert status("old-token") == 401 and status("new-token") == 200
        assert client.get("/v1/items/10").status_code == 200  # tokens guard admin routes only
    finally:
        server.close()
