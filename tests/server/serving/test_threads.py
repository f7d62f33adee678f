"""The serving process's thread limit: torch's and BLAS's pools, applied at start-up."""

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient
from threadpoolctl import threadpool_info, threadpool_limits

from fedrec.server.api import main
from fedrec.server.api.settings import Settings
from fedrec.server.serving.threads import limit_compute_threads


def _blas_threads() -> set[int]:
    return {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}


@pytest.fixture
def restored() -> Iterator[None]:
    torch_threads, blas = torch.get_num_threads(), threadpool_limits(user_api="blas")
    try:
        yield
    finally:
        torch.set_num_threads(torch_threads)
        blas.restore_original_limits()


@pytest.mark.usefixtures("restored")
def test_the_limit_sets_torch_and_blas_and_zero_leaves_them() -> None:
    limit_compute_threads(1)
    assert torch.get_num_threads() == 1
    assert _blas_threads() <= {1}
    torch.set_num_threads(2)
    limit_compute_threads(0)
    assert torch.get_num_threads() == 2
    with pytest.raises(ValueError, match=">= 0"):
        limit_compute_threads(-1)


def test_the_app_applies_its_setting_at_start_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []
    monkeypatch.setattr(main, "limit_compute_threads", seen.append)
    app = main.create_app(Settings(model_path=str(tmp_path), compute_threads=3))
    with TestClient(app) as client:
        client.get("/health")
    assert seen == [3]
    assert Settings().compute_threads == 1  # the default: one thread per operation


@pytest.mark.parametrize("background", [False, True])
def test_the_first_load_runs_before_the_limit_on_every_core(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, background: bool
) -> None:
    from fedrec.server.api.state import ModelHolder

    events: list[object] = []
    monkeypatch.setattr(main, "limit_compute_threads", lambda n: events.append(("limit", n)))
    real_load = ModelHolder.load

    def load(self: ModelHolder) -> None:
        events.append("load")
        real_load(self)

    monkeypatch.setattr(ModelHolder, "load", load)
    settings = Settings(model_path=str(tmp_path), compute_threads=2, load_in_background=background)
    with TestClient(main.create_app(settings)) as client:
        deadline = time.monotonic() + 30
        while ("limit", 2) not in events and time.monotonic() < deadline:
            time.sleep(0.01)
        client.get("/health")
    assert events == ["load", ("limit", 2)]
