"""A cold start goes to a worker thread once: its lookups and its answer's checks do not."""

from collections import Counter
from pathlib import Path

import pytest
import starlette.concurrency
from fastapi import routing
from fastapi.dependencies import utils
from fastapi.testclient import TestClient

from fedrec.server.api.main import create_app
from fedrec.server.api.settings import Settings

from .conftest import make_run


def test_a_cold_start_makes_no_trip_through_fastapis_thread_pool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trips: Counter[str] = Counter()
    pool = starlette.concurrency.run_in_threadpool

    async def counted(func, *args, **kwargs):  # type: ignore[no-untyped-def]
        trips[getattr(func, "__qualname__", repr(func))] += 1
        return await pool(func, *args, **kwargs)

    for module in (routing, utils):
        monkeypatch.setattr(module, "run_in_threadpool", counted)
    app = create_app(Settings(model_path=str(make_run(tmp_path / "run")), load_in_background=False))
    with TestClient(app) as client:
        one = client.post("/v1/recommendations/cold-start", json={"liked_item_ids": ["10"], "k": 2})
        batch = client.post(
            "/v1/recommendations/cold-start/batch",
            json={"requests": [{"liked_item_ids": ["10"], "k": 2}, {"liked_item_ids": ["99"]}]},
        )
    assert one.status_code == 200 and [i["id"] for i in one.json()["items"]] == ["12", "11"]
    assert batch.status_code == 200
    results = batch.json()["results"]
    assert results[0]["items"] == one.json()["items"] and results[1]["error"] is not None
    # The model's work runs in anyio's worker threads directly; nothing else leaves the loop.
    assert trips == Counter()
