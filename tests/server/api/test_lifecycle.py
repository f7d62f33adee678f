"""Readiness apart from liveness, and hot reload, over real HTTP."""

import gc
import threading
import time
import weakref
from pathlib import Path

import httpx
import numpy as np
import pytest

import fedrec.server.api.state as state
from fedrec.shared.checkpoint import save_checkpoint
from tests.server.api.conftest import (
    ADMIN_TOKEN,
    BIAS,
    FACTORS,
    SERVED_APPS,
    make_run,
    serve,
    wait_loaded,
)

OK = {"X-Admin-Token": ADMIN_TOKEN}


def _round(run: Path, rnd: int) -> Path:
    return save_checkpoint(
        run,
        round=rnd,
        tensors={"item_factors": FACTORS[::-1].copy(), "item_bias": BIAS},
        run_name="tiny",
        kind="federated",
        config={},
        metrics={},
        history=[{"round": rnd}],
        privacy=None,
    )


def test_the_port_answers_while_the_model_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    real = state.load_served

    def slow(*args: object, **kwargs: object) -> state.ServedModel:
        assert release.wait(30)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(state, "load_served", slow)
    run = make_run(tmp_path / "tiny")
    # serve() waits for the load; here the first answers must come while it runs.
    monkeypatch.setattr("tests.server.api.conftest.wait_loaded", lambda client: None)
    server = serve(run)
    client = next(server)
    try:
        assert client.get("/health").json() == {"status": "loading", "model_version": None}
        ready = client.get("/ready")
        assert ready.status_code == 503 and ready.json()["code"] == "loading"
        assert ready.headers["retry-after"]
        assert client.get("/v1/model").json()["code"] == "loading"
        release.set()
        wait_loaded(client)
        assert client.get("/ready").json() == {"status": "ready", "model_version": "tiny@r3"}
    finally:
        release.set()
        server.close()


def test_without_a_model_ready_is_a_503_and_health_is_alive(empty_client: httpx.Client) -> None:
    assert empty_client.get("/health").status_code == 200
    r = empty_client.get("/ready")
    assert r.status_code == 503 and r.json()["code"] == "no_model"


def test_reload_swaps_in_a_newer_checkpoint_and_refuses_a_broken_one(tmp_path: Path) -> None:
    run = make_run(tmp_path / "tiny")
    server = serve(run, admin_token=ADMIN_TOKEN)
    client = next(server)
    try:
        r = client.post("/v1/admin/reload", headers=OK)
        assert r.status_code == 200 and r.json()["reloaded"] is False
        _round(run, 4)
        r = client.post("/v1/admin/reload", headers=OK)
        assert r.json() == {**r.json(), "reloaded": True, "model_version": "tiny@r4"}
        assert client.get("/v1/model").json()["round"] == 4
        broken = _round(run, 5) / "model.safetensors"
        broken.write_bytes(broken.read_bytes()[:-8] + b"damaged!")
        r = client.post("/v1/admin/reload", headers=OK)
        assert r.status_code == 409 and r.json()["code"] == "reload_failed"
        assert client.get("/health").json()["model_version"] == "tiny@r4"
        assert client.get("/v1/items/10/similar").status_code == 200
        assert client.post("/v1/admin/reload").status_code == 401
    finally:
        server.close()


def test_a_watched_model_path_is_reloaded_by_itself(tmp_path: Path) -> None:
    run = make_run(tmp_path / "tiny")
    server = serve(run, reload_interval_s=0.1)
    client = next(server)
    try:
        _round(run, 7)
        deadline = time.monotonic() + 20
        while client.get("/health").json()["model_version"] != "tiny@r7":
            assert time.monotonic() < deadline, "the new checkpoint was not picked up"
            time.sleep(0.05)
    finally:
        server.close()


def test_a_request_in_flight_finishes_on_the_model_it_started_with(tmp_path: Path) -> None:
    run = make_run(tmp_path / "tiny")
    server = serve(run, admin_token=ADMIN_TOKEN)
    client = next(server)
    entered, release = threading.Event(), threading.Event()
    try:
        holder = _holder_of(client)
        old = holder.served
        assert old is not None
        real = old.recommender.cold_start

        def held(*args: object, **kwargs: object) -> object:
            entered.set()
            assert release.wait(30)
            return real(*args, **kwargs)  # type: ignore[arg-type]

        old.recommender.cold_start = held  # type: ignore[method-assign]
        answers: list[httpx.Response] = []
        body = {"liked_item_ids": ["10"], "k": 2}
        worker = threading.Thread(
            target=lambda: answers.append(client.post("/v1/recommendations/cold-start", json=body))
        )
        worker.start()
        assert entered.wait(30)
        _round(run, 4)
        assert client.post("/v1/admin/reload", headers=OK).json()["model_version"] == "tiny@r4"
        release.set()
        worker.join(30)
        assert answers[0].status_code == 200 and answers[0].json()["model_version"] == "tiny@r3"
        new = client.post("/v1/recommendations/cold-start", json=body).json()
        assert new["model_version"] == "tiny@r4"
        assert np.allclose(holder.served.recommender.q, FACTORS[::-1])  # type: ignore[union-attr]
    finally:
        release.set()
        server.close()


def _holder_of(client: httpx.Client) -> state.ModelHolder:
    """The holder of the in-process server behind ``client`` (its app is in this process)."""
    return SERVED_APPS[str(client.base_url.port)].state.holder  # type: ignore[no-any-return]


def test_the_served_model_is_kept_out_of_collections_and_a_replaced_one_is_freed(
    tmp_path: Path,
) -> None:
    run = make_run(tmp_path / "tiny")
    server = serve(run, admin_token=ADMIN_TOKEN, freeze_heap=True)
    client = next(server)
    try:
        holder = _holder_of(client)
        served = holder.served
        assert served is not None and gc.is_tracked(served.recommender)
        # Frozen: in no generation, so no collection walks it while requests wait.
        assert gc.get_freeze_count() > 0
        assert not any(o is served.recommender for o in gc.get_objects(generation=2))
        old = weakref.ref(served.recommender)
        del served
        _round(run, 4)
        assert client.post("/v1/admin/reload", headers=OK).json()["reloaded"] is True
        assert old() is None  # freed with the reload, not kept frozen
        new = holder.served
        assert new is not None
        assert not any(o is new.recommender for o in gc.get_objects(generation=2))
    finally:
        server.close()
        gc.unfreeze()  # the rest of the test run collects as usual
