"""Admin routes over real HTTP: constrained input, auth first, replace and remove, the journal."""

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.server.api.conftest import ADMIN_TOKEN, make_text_run, serve

OK = {"X-Admin-Token": ADMIN_TOKEN}
ITEM = {"id": "n1", "title": "Saturn Rising", "genres": ["sci-fi"], "description": "Rockets."}


@pytest.fixture(scope="module")
def admin_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("admin")
    return make_text_run(root / "runs" / "text", root / "cache")


@pytest.fixture(scope="module")
def admin(admin_run: Path) -> Iterator[httpx.Client]:
    yield from serve(admin_run, admin_token=ADMIN_TOKEN, extra_genres=["Documentary"])


@pytest.mark.parametrize(
    "item_id",
    ["a/b", "..", ".hidden", "a\x00b", "a\tb", "a b", "x\u202ey", "<script>", "é", "", "x" * 65],
)
def test_ids_outside_the_allowed_characters_are_refused(admin: httpx.Client, item_id: str) -> None:
    r = admin.post("/v1/admin/items", json={**ITEM, "id": item_id}, headers=OK)
    assert r.status_code == 422, r.text


@pytest.mark.parametrize(
    "change",
    [
        {"genres": ["x" * 200_000]},  # far past any genre's length
        {"genres": ["Polka"]},  # not in the vocabulary
        {"genres": ["Drama"] * 11},  # too many
        {"title": ""},
        {"title": " padded "},
        {"title": "x" * 301},
        {"title": "two\nlines"},
        {"title": "mirror\u202eed"},
        {"description": "x" * 10_001},
        {"description": "nul\x00"},
    ],
)
def test_fields_are_bounded(admin: httpx.Client, change: dict[str, object]) -> None:
    r = admin.post("/v1/admin/items", json={**ITEM, "id": "bounded", **change}, headers=OK)
    assert r.status_code == 422, r.text


def test_genres_come_from_the_vocabulary_in_its_spelling(admin: httpx.Client) -> None:
    body = {**ITEM, "id": "voc1", "genres": ["SCI-FI", "documentary", "Sci-Fi"]}
    r = admin.post("/v1/admin/items", json=body, headers=OK)
    assert r.status_code == 201, r.text
    assert r.json()["genres"] == ["Sci-Fi", "Documentary"]
    # An unknown genre's 422 lists the vocabulary, which an admin cannot grow by adding items.
    r = admin.post("/v1/recommendations/cold-start", json={"text": "x", "genres": ["Polka"]})
    assert r.status_code == 422 and "Documentary" in r.text and "Polka" in r.text


def test_the_token_is_checked_before_the_body(admin: httpx.Client) -> None:
    for body in (b"{not json", b'{"id": 5}', b"x" * 50_000):
        r = admin.post(
            "/v1/admin/items", content=body, headers={"content-type": "application/json"}
        )
        assert r.status_code == 401, r.text
        assert r.json()["code"] == "unauthorized" and not r.json()["errors"]
        assert len(r.content) < 1_000


def test_replace_and_remove_an_added_item(admin: httpx.Client) -> None:
    url = "/v1/admin/items/swap1"
    assert (
        admin.post("/v1/admin/items", json={**ITEM, "id": "swap1"}, headers=OK).status_code == 201
    )
    new = {"title": "Vault Heist", "genres": ["Crime"], "description": "A bank robbery."}
    r = admin.put(url, json=new, headers=OK)
    assert r.status_code == 200 and r.json()["title"] == "Vault Heist"
    assert admin.get("/v1/items/swap1").json()["genres"] == ["Crime"]
    n_items = admin.get("/v1/model").json()["n_items"]
    assert admin.delete(url, headers=OK).status_code == 204
    assert admin.get("/v1/model").json()["n_items"] == n_items - 1
    assert admin.get("/v1/items/swap1").status_code == 404
    assert admin.delete(url, headers=OK).status_code == 404
    assert admin.put(url, json=new, headers=OK).status_code == 404
    # Items of the trained model are not the admin's to change.
    assert admin.delete("/v1/admin/items/100", headers=OK).status_code == 409
    assert admin.put("/v1/admin/items/100", json=new, headers=OK).status_code == 409
    assert admin.get("/v1/items/100").status_code == 200
    assert admin.delete(url).status_code == 401


def test_changes_survive_a_restart(tmp_path: Path) -> None:
    run = make_text_run(tmp_path / "runs" / "text", tmp_path / "cache")
    first = serve(run, admin_token=ADMIN_TOKEN)
    client = next(first)
    for i in range(3):
        body = {**ITEM, "id": f"k{i}"}
        assert client.post("/v1/admin/items", json=body, headers=OK).status_code == 201
    assert (
        client.put("/v1/admin/items/k1", json={"title": "Renamed"}, headers=OK).status_code == 200
    )
    assert client.delete("/v1/admin/items/k0", headers=OK).status_code == 204
    first.close()
    second = serve(run)
    client = next(second)
    try:
        assert client.get("/v1/items/k0").status_code == 404
        assert client.get("/v1/items/k1").json()["title"] == "Renamed"
        assert client.get("/v1/items/k2").status_code == 200
        assert client.get("/v1/model").json()["n_items"] == 6 + 2
    finally:
        second.close()


def test_a_corrupt_journal_line_is_skipped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run = make_text_run(tmp_path / "runs" / "text", tmp_path / "cache")
    journal = run / "added-items.jsonl"
    lines = [
        json.dumps({**ITEM, "id": "good1"}),
        '{"id": "torn", "title": "Half a li',  # a torn write
        json.dumps({**ITEM, "id": "a/b"}),  # refused by today's rules
        json.dumps({**ITEM, "id": "100"}),  # collides with a trained item
        json.dumps({**ITEM, "id": "good2"}),
    ]
    journal.write_text("\n".join(lines) + "\n")
    before = journal.read_bytes()
    with caplog.at_level(logging.WARNING):
        server = serve(run)
        client = next(server)
    try:
        assert client.get("/v1/items/good1").status_code == 200
        assert client.get("/v1/items/good2").status_code == 200
        assert client.get("/v1/items/100").json()["title"] == "Rockets to Mars"
    finally:
        server.close()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(str(journal) in w and "line 2" in w for w in warnings), warnings
    assert any(str(journal) in w and "line 3" in w for w in warnings), warnings
    assert journal.read_bytes() == before
