"""A real uvicorn server on a free loopback port, over a tiny checkpoint with known answers."""

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import uvicorn
from fastapi import FastAPI

from fedrec.server.api.main import create_app
from fedrec.server.api.settings import Settings
from fedrec.shared.checkpoint import save_catalog, save_checkpoint
from fedrec.shared.data.dataset import ItemCatalog
from fedrec.simulations.loopback import free_port as _free_port

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


SPACE, LOVE, HEIST = 0, 1, 2
TEXT_TITLES = [
    "Rockets to Mars",
    "Moonbase Odyssey",
    "Love in Paris",
    "Wedding Season",
    "The Bank Job",
    "Vault Thieves",
]
TEXT_GENRES = [["Sci-Fi"], ["Sci-Fi"], ["Romance"], ["Romance"], ["Crime"], ["Crime"]]
TEXT_EXTRAS = [
    "Astronauts fly a rocket through outer space to a distant planet.",
    "A crew on the moon explores space and the stars.",
    "Two people fall in love in a romantic city.",
    "A romantic comedy about weddings and falling in love.",
    "Robbers plan a heist to steal gold from a bank vault.",
    "A gang of thieves cracks a safe in a daring robbery.",
]


def make_text_run(run_dir: Path, cache_dir: Path) -> Path:
    """A hybrid checkpoint whose towers are identities over the real encoder's space.

    With no item factors, an item's vector is its text embedding and a user's is their
    text's embedding, so scores are cosine similarities: known answers from real text.
    """
    from fedrec.shared.data.catalog import item_text
    from fedrec.shared.models.encoder import TEXT_DIM

    texts = [
        item_text(t, g, extra=x)
        for t, g, x in zip(TEXT_TITLES, TEXT_GENRES, TEXT_EXTRAS, strict=True)
    ]
    catalog = ItemCatalog(
        raw_ids=[str(100 + i) for i in range(6)],
        titles=TEXT_TITLES,
        genres=TEXT_GENRES,
        texts=texts,
        years=[None] * 6,
    )
    dim = TEXT_DIM
    eye = np.eye(dim, dtype=np.float32)
    save_catalog(run_dir, catalog)
    save_checkpoint(
        run_dir,
        round=1,
        tensors={
            "item_factors": np.zeros((6, dim), np.float32),
            "item_bias": np.zeros(6, np.float32),
            "text.item_head.weight": np.vstack([eye, np.zeros((1, dim), np.float32)]),
            "text.item_head.bias": np.zeros(dim + 1, np.float32),
            "text.user_head.weight": eye,
            "text.user_head.bias": np.zeros(dim, np.float32),
        },
        run_name="text",
        kind="federated",
        config={"text-tower": "heads", "text-max-length": 64, "text-cache-dir": str(cache_dir)},
        metrics={},
        history=[{"round": 1}],
        privacy=None,
    )
    return run_dir


# The app behind each live server, by port: tests may look inside (e.g. at its holder).
SERVED_APPS: dict[str, FastAPI] = {}


def wait_loaded(client: httpx.Client, timeout: float = 60) -> None:
    """Wait until the model is loaded (or known to be absent): the port opens before."""
    deadline = time.monotonic() + timeout
    while client.get("/health").json()["status"] == "loading":
        assert time.monotonic() < deadline, "the model did not load"
        time.sleep(0.02)


def _serve(model_path: Path, **extra: object) -> Iterator[httpx.Client]:
    # A test process's heap is the whole test run's: freezing it at every load would only
    # cost a full collection each time (test_lifecycle turns it on to test it).
    extra.setdefault("freeze_heap", False)
    settings = Settings(model_path=str(model_path), port=_free_port(), max_k=5, **extra)
    app = SERVED_APPS[str(settings.port)] = create_app(settings)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
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
        wait_loaded(client)
        yield client
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    yield from _serve(make_run(tmp_path_factory.mktemp("runs") / "tiny"))


@pytest.fixture
def empty_client(tmp_path: Path) -> Iterator[httpx.Client]:
    yield from _serve(tmp_path)


ADMIN_TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def text_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("text")
    return make_text_run(root / "runs" / "text", root / "cache")


@pytest.fixture(scope="module")
def text_client(text_run: Path) -> Iterator[httpx.Client]:
    yield from _serve(text_run, admin_token=ADMIN_TOKEN, max_text_tokens=16)


def serve(model_path: Path, **extra: object) -> Iterator[httpx.Client]:
    """A server over ``model_path`` (for tests that restart it)."""
    yield from _serve(model_path, **extra)


@pytest.fixture(scope="module")
def client_with_admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """The tiny MF-only model with admin routes on."""
    yield from _serve(make_run(tmp_path_factory.mktemp("runs") / "tiny"), admin_token=ADMIN_TOKEN)
