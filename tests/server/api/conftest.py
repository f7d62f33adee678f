"""A real uvicorn server on a free loopback port, over a tiny checkpoint with known answers."""

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import uvicorn

from fedrec.server.api.main import create_app
from fedrec.server.api.settings import Settings
from fedrec.shared.checkpoint import save_catalog, save_checkpoint
from fedrec.shared.data.dataset import ItemCatalog

# Six items in two clusters: {0, 1, 2} point along x, {3, 4, 5} along y. Item 1 is the
# nearest neighbour of item 0; item 2 has the larger bias within the x cluster.
FACTORS = np.array(
    [[1.0, 0.0], [0.95, 0.05], [0.9, 0.1], [0.0, 1.0], [0.05, 0.95], [0.1, 0.9]], np.float32
)
BIAS = np.array([0.0, 0.0, 0.5, 0.0, 0.0, 0.0], np.float32)


def make_run(run_dir: Path) -> Path:
    catalog = ItemCatalog(
        raw_ids=[str(10 + i) for i in range(6)],
        titles=[f"Movie {i}" for i in range(6)],
        genres=[["Drama"]] * 3 + [["Comedy"]] * 3,
        texts=[f"Movie {i}." for i in range(6)],
        years=[2000 + i for i in range(6)],
    )
    save_catalog(run_dir, catalog)
    save_checkpoint(
        run_dir,
        round=3,
        tensors={"item_factors": FACTORS, "item_bias": BIAS},
        run_name="tiny",
        kind="federated",
        config={"dp-enabled": True},
        metrics={"eval/ndcg@10_full": 0.5},
        history=[{"round": 3}],
        privacy={"unit": "record", "epsilon": 1.5, "delta": 1e-5},
    )
    return run_dir


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(model_path: Path) -> Iterator[httpx.Client]:
    settings = Settings(model_path=str(model_path), port=_free_port(), max_k=5)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings),
            host="127.0.0.1",
            port=settings.port,
            log_level="warning",
            ws="none",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.02)
    with httpx.Client(base_url=f"http://127.0.0.1:{settings.port}", timeout=10) as client:
        yield client
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    yield from _serve(make_run(tmp_path_factory.mktemp("runs") / "tiny"))


@pytest.fixture
def empty_client(tmp_path: Path) -> Iterator[httpx.Client]:
    yield from _serve(tmp_path)
