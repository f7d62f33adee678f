"""Serving benchmark: start-up to ready, latency and throughput of the HTTP API on loopback.

The service runs as its own process (``fedrec serve``), so the load generator here does
not share its interpreter; every request is real HTTP on 127.0.0.1. The model is the
served default, a co-occurrence checkpoint trained on the embedded ML-100K (user-dp off:
the private release serves at the same cost), or with ``model="hybrid"`` a hybrid MF
checkpoint of the same size with synthetic titles.

1. Start-up to ready (``/ready`` answers 200), with 0 and with ``added`` admin-added items
   in the run's journal: the first start (their texts not yet encoded) and a restart.
2. Latency at concurrency 1: cold start from 3 liked items, from free text never seen
   before (each request its own text), and from texts asked again (the service keeps
   recent texts' embeddings).
3. Throughput at each concurrency: requests a second, text and liked-items requests.
4. The text rows again at other service settings: the libraries' own thread pools
   (``compute_threads`` 0), two encoder passes at once (``encoder_passes`` 2).
5. Where one request's time goes, in process (:mod:`.serve_profile`).

Every loop is bounded in count and time. The result records the load average before and
after: on a shared machine the numbers are an upper bound on latency, not a clean one.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from fedrec.shared.checkpoint import load_checkpoint, save_catalog, save_checkpoint
from fedrec.shared.data.catalog import item_text
from fedrec.shared.data.dataset import ItemCatalog
from fedrec.shared.models.encoder import TEXT_DIM
from fedrec.simulations.loopback import free_port as _free_port
from fedrec.simulations.report import save
from fedrec.simulations.serve_profile import profile_requests

N_ITEMS, DIM = 1682, 32
GOALS = {
    "liked_p99_ms_c1": 10.0,
    "text_p99_ms_c1": 30.0,
    "text_speedup_c8": 1.6,
    "startup_s_1000_added": 10.0,
}
TEXTS = [
    "witty space adventures with robots",
    "a quiet romance in Paris",
    "gangsters, heists and a double cross",
    "animated films for kids about animals",
    "war stories told by soldiers",
    "a detective solving murders in the fog",
    "musicals with big dance numbers",
    "horror in an old house at night",
]
_WORDS = "space love heist war comedy drama robot ship city night dream family crime".split()
# Appended two at a time to TEXTS so that every request's text is one never seen before.
_EXTRA = (
    "funny dark slow epic gentle tense sad clever loud strange bleak warm violent "
    "romantic silly grim bold tender brutal hopeful"
).split()
COOCCURRENCE_RUN = "serve-bench-cooccurrence"
# The service's defaults of the settings the comparison rows change (server/api/settings.py).
DEFAULT_SETTINGS = {"compute_threads": 1, "encoder_passes": 1}
# The served default at its cheapest honest setting: what serving costs does not depend on
# the release's noise, only on the tables' sizes and the text towers.
COOCCURRENCE_OVERRIDES = {"user-dp": "off", "cooccurrence-item-model": "ease"}


def make_checkpoint(run_dir: Path, cache_dir: Path, *, seed: int = 0) -> Path:
    """A hybrid checkpoint the size of ML-100K's, with synthetic titles (written once)."""
    if (run_dir / "LATEST").exists():
        return run_dir
    rng = np.random.default_rng(seed)
    genres = ["Drama", "Comedy", "Action", "Sci-Fi", "Romance"]
    titles = [
        " ".join(rng.choice(_WORDS, 3)).title() + f" ({1950 + i % 50})" for i in range(N_ITEMS)
    ]
    item_genres = [[genres[i % len(genres)]] for i in range(N_ITEMS)]
    save_catalog(
        run_dir,
        ItemCatalog(
            raw_ids=[str(i + 1) for i in range(N_ITEMS)],
            titles=titles,
            genres=item_genres,
            texts=[item_text(t, g) for t, g in zip(titles, item_genres, strict=True)],
            years=[None] * N_ITEMS,
        ),
    )
    save_checkpoint(
        run_dir,
        round=1,
        tensors={
            "item_factors": rng.normal(0, 0.1, (N_ITEMS, DIM)).astype(np.float32),
            "item_bias": rng.normal(0, 0.1, N_ITEMS).astype(np.float32),
            "text.user_head.weight": rng.normal(0, 0.05, (DIM, TEXT_DIM)).astype(np.float32),
            "text.user_head.bias": np.zeros(DIM, np.float32),
        },
        run_name="serve-bench",
        kind="federated",
        config={"text-tower": "heads", "text-max-length": 64, "text-cache-dir": str(cache_dir)},
        metrics={},
        history=[],
        privacy=None,
    )
    return run_dir


def make_cooccurrence_checkpoint(runs_dir: Path) -> Path:
    """The served default, trained on the embedded ML-100K (once; reused after)."""
    run_dir = runs_dir / COOCCURRENCE_RUN
    if (run_dir / "LATEST").exists():
        return run_dir
    from fedrec.simulation.cooccurrence import train_cooccurrence

    train_cooccurrence(
        {**COOCCURRENCE_OVERRIDES, "output-dir": str(runs_dir), "run-name": COOCCURRENCE_RUN}
    )
    return run_dir


def describe_model(run_dir: Path) -> dict[str, Any]:
    """What the report says of the measured model: kind, size, settings."""
    ckpt = load_checkpoint(run_dir)
    config = ckpt.manifest.get("config", {})
    tensors = ckpt.tensors
    return {
        "kind": ckpt.manifest.get("kind"),
        "items": len(ckpt.catalog),
        "embedding_dim": int(tensors["item_factors"].shape[1]),
        "text_towers": "text.user_head.weight" in tensors,
        "user_dp": config.get("user-dp"),
        "item_model": config.get("cooccurrence-item-model"),
        "dataset": config.get("dataset"),
        "data_path": config.get("data-path"),
        "path": run_dir.name,
    }


def write_journal(run_dir: Path, n: int) -> None:
    """``n`` admin-added items in the run's journal (and no stored embeddings of them)."""
    lines = [
        json.dumps(
            {
                "id": f"added-{i}",
                "title": f"A New Film Number {i}",
                "genres": ["Drama"],
                "description": f"The story of item {i}: a long journey home across the sea.",
            }
        )
        for i in range(n)
    ]
    (run_dir / "added-items.jsonl").write_text("".join(line + "\n" for line in lines))


class ServiceProcess:
    """``fedrec serve`` in a child process; start-up time is measured to ``/ready``."""

    def __init__(
        self,
        run_dir: Path,
        *,
        log: Path,
        timeout_s: float = 180.0,
        settings: dict[str, int] | None = None,
    ) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "FEDREC_MODEL_PATH": str(run_dir), "FEDREC_PORT": str(self.port)}
        env["FEDREC_MAX_K"] = "100"
        # Measured as `make` runs it: a start reads its libraries' cached bytecode instead of
        # compiling them again (PYTHONDONTWRITEBYTECODE in the caller's environment would
        # make every start compile transformers and torch from source).
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        for key, value in (settings or {}).items():
            env[f"FEDREC_{key.upper()}"] = str(value)
        start = time.perf_counter()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from fedrec.cli.main import main; main()",
                "serve",
                "--model-path",
                str(run_dir),
                "--port",
                str(self.port),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log.open("ab"),
        )
        deadline = start + timeout_s
        with httpx.Client(timeout=5) as client:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"the service exited with {self.proc.returncode}; its log: {log}"
                    )
                if time.perf_counter() > deadline:
                    self.stop()
                    raise RuntimeError("the service was not ready in time")
                try:
                    if client.get(f"{self.url}/ready").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.02)
        self.startup_s = time.perf_counter() - start

    def stop(self) -> None:
        """End the child process (it is ours) and wait for it."""
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _percentiles(ms: Sequence[float]) -> dict[str, float]:
    ordered = sorted(ms)
    return {
        "p50_ms": statistics.median(ordered),
        "p99_ms": ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))],
        "mean_ms": statistics.fmean(ordered),
        "requests": len(ordered),
    }


def unique_text(i: int) -> str:
    """The ``i``-th text of an endless sequence of distinct ones (TEXTS and two extra words)."""
    base, rest = TEXTS[i % len(TEXTS)], i // len(TEXTS)
    m = len(_EXTRA)
    first, second = _EXTRA[rest % m], _EXTRA[(rest // m + rest + 1) % m]
    suffix = f", {first} and {second}" if first != second else f", {first}"
    return base + suffix + (f" {rest // (m * m)}" if rest >= m * m else "")


def _bodies(kind: str, n: int, seed: int, ids: Sequence[str]) -> list[dict[str, Any]]:
    """Request bodies: 3 random liked items, distinct texts, or TEXTS in turn.

    ``kind`` is ``liked``, ``text`` (texts no other seed gives) or ``text_repeated``.
    """
    rng = np.random.default_rng(seed)
    if kind == "liked":
        return [
            {"liked_item_ids": [ids[i] for i in rng.choice(len(ids), 3, replace=False)], "k": 10}
            for _ in range(n)
        ]
    if kind == "text":
        return [{"text": unique_text(seed * 100_000 + i), "k": 10} for i in range(n)]
    return [{"text": TEXTS[i % len(TEXTS)], "k": 10} for i in range(n)]


def _load(url: str, bodies: list[dict[str, Any]], concurrency: int) -> tuple[float, list[float]]:
    """Send ``bodies`` from ``concurrency`` threads; wall seconds and each latency (ms)."""
    latencies: list[float] = []
    lock = threading.Lock()
    chunks = [bodies[i::concurrency] for i in range(concurrency)]

    def worker(chunk: list[dict[str, Any]]) -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            for body in chunk:
                t0 = time.perf_counter()
                r = client.post("/v1/recommendations/cold-start", json=body)
                elapsed = (time.perf_counter() - t0) * 1000
                if r.status_code != 200:
                    raise RuntimeError(f"{r.status_code}: {r.text[:200]}")
                with lock:
                    latencies.append(elapsed)

    threads = [threading.Thread(target=worker, args=(c,)) for c in chunks]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start, latencies


def _warm(url: str, ids: Sequence[str], requests: int = 64) -> None:
    """Requests of each kind first: the encoder's kernels are set up per input shape."""
    for kind in ("liked", "text", "text_repeated"):
        _load(url, _bodies(kind, requests, seed=99, ids=ids), 1)


def _text_rows(
    url: str, ids: Sequence[str], requests: int, concurrency: Sequence[int], seed: int
) -> list[dict[str, Any]]:
    rows = []
    for c in concurrency:
        wall, ms = _load(url, _bodies("text", requests, seed=seed + c, ids=ids), c)
        rows.append({"kind": "text", "concurrency": c, "rps": len(ms) / wall, **_percentiles(ms)})
    return rows


def run_serve_benchmark(
    *,
    output_dir: Path,
    runs_dir: Path,
    name: str = "serve",
    added: int = 1000,
    requests: int = 200,
    concurrency: Sequence[int] = (1, 4, 8),
    model: str = "cooccurrence",
    checkpoint: Path | None = None,
    compare: Sequence[dict[str, int]] = ({"compute_threads": 0}, {"encoder_passes": 2}),
    compare_requests: int = 48,
    profile_requests_n: int = 40,
    progress: Callable[[str], None] = lambda message: None,
) -> dict[str, Any]:
    """Measure and write ``<name>.json`` / ``<name>.md``.

    ``model``: ``cooccurrence`` (the served default, trained once under ``runs_dir``) or
    ``hybrid``; ``checkpoint``: a run to measure instead (its journal is rewritten).
    ``compare``: other service settings (``FEDREC_*``, over the defaults) to measure text
    requests at, at the lowest and highest concurrency.
    """
    runs_dir.mkdir(parents=True, exist_ok=True)
    if checkpoint is not None:
        run_dir = checkpoint
    elif model == "cooccurrence":
        progress("training the co-occurrence checkpoint (once)")
        run_dir = make_cooccurrence_checkpoint(runs_dir)
    elif model == "hybrid":
        run_dir = make_checkpoint(runs_dir / "serve-bench", runs_dir / "cache")
    else:
        raise ValueError(f"model must be cooccurrence or hybrid, got {model!r}")
    described = describe_model(run_dir)
    ids = load_checkpoint(run_dir).catalog.raw_ids
    load_before = os.getloadavg()
    log = runs_dir / "serve.log"
    startup = []
    for n_added, state in ((0, "first"), (added, "first"), (added, "restart")):
        if state == "first":
            write_journal(run_dir, n_added)
            (run_dir / "added-items.embeddings.npz").unlink(missing_ok=True)
        progress(f"start-up with {n_added} added items ({state} start)")
        service = ServiceProcess(run_dir, log=log)
        service.stop()
        startup.append({"added_items": n_added, "start": state, "seconds": service.startup_s})
    write_journal(run_dir, 0)
    service = ServiceProcess(run_dir, log=log)
    try:
        _warm(service.url, ids)
        latency = {}
        for kind in ("liked", "text", "text_repeated"):
            progress(f"latency, {kind} cold start, concurrency 1")
            _, ms = _load(service.url, _bodies(kind, requests, seed=1, ids=ids), 1)
            latency[kind] = _percentiles(ms)
        throughput = []
        for c in concurrency:
            progress(f"throughput, liked cold start, concurrency {c}")
            wall, ms = _load(service.url, _bodies("liked", requests, seed=2, ids=ids), c)
            throughput.append(
                {"kind": "liked", "concurrency": c, "rps": len(ms) / wall, **_percentiles(ms)}
            )
        progress("throughput, text cold start")
        throughput += _text_rows(service.url, ids, requests, concurrency, seed=10)
    finally:
        service.stop()
    settings_rows = []
    ends = sorted({min(concurrency), max(concurrency)})
    for changed in compare:
        progress(f"text cold start with {changed}")
        service = ServiceProcess(run_dir, log=log, settings=changed)
        try:
            _warm(service.url, ids, requests=16)
            for row in _text_rows(service.url, ids, compare_requests, ends, seed=20):
                settings_rows.append({**DEFAULT_SETTINGS, **changed, **row})
        finally:
            service.stop()
    load_after = os.getloadavg()
    profile = profile_requests(
        run_dir,
        {
            kind: _bodies(kind, 2 * profile_requests_n, seed=7, ids=ids)
            for kind in ("liked", "text")
        },
        warm={kind: _bodies(kind, 16, seed=99, ids=ids) for kind in ("liked", "text")},
        progress=progress,
    )
    result: dict[str, Any] = {
        "benchmark": name,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_avg_before": list(load_before),
            "load_avg_after": list(load_after),
            "service_bytecode_cache": True,  # ServiceProcess
        },
        "model": described,
        "startup": startup,
        "latency": latency,
        "throughput": throughput,
        "settings": settings_rows,
        "profile": profile,
        "goals": GOALS,
    }
    save(result, output_dir, name, kind="serve")
    return result
