"""What the service serves, and swapping it: loading in the background, hot reload.

A :class:`ServedModel` (checkpoint, serving model, journal) is built whole, then put in
place by one reference assignment. A request takes the reference once (its dependency),
so a request in flight finishes on the model it started with while a reload swaps the
next one in. A checkpoint that fails to load is refused and the old model keeps serving.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from fedrec.server.api.added_items import EMBEDDINGS_FILE, Journal, journal_path
from fedrec.server.api.genres import genre_vocabulary
from fedrec.server.api.settings import Settings
from fedrec.server.serving import NewItem, Recommender
from fedrec.server.text_store import EmbeddingStore
from fedrec.shared.checkpoint import Checkpoint, checkpoint_dir, load_checkpoint
from fedrec.shared.device import resolve_device
from fedrec.shared.errors import CheckpointError

logger = logging.getLogger(__name__)

Status = Literal["loading", "ready", "no-model"]


def settle_heap() -> float:
    """Collect once, then keep what is alive now out of every later collection.

    A loaded model is hundreds of thousands of long-lived Python objects (the encoder's
    modules, the catalogue); a full collection walks them all, holding the GIL while
    requests wait, for nothing: they live as long as the model. ``gc.freeze`` moves them
    out of the collector's reach (refcounting still frees them). A reload unfreezes first,
    so the replaced model's cycles are collected. Returns the seconds it took.
    """
    start = time.perf_counter()
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    return time.perf_counter() - start


@dataclass(frozen=True)
class ServedModel:
    """One loaded model with everything a request needs from it."""

    checkpoint: Checkpoint
    recommender: Recommender
    journal: Journal
    loaded_at: float = field(default_factory=time.time)
    # Artifacts derived from this model (e.g. the signed item model), built on first use.
    cache: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def version(self) -> str:
        """The model version, ``<run>@r<round>``."""
        return self.checkpoint.model_version


def replay_added_items(rec: Recommender, journal: Journal, settings: Settings) -> int:
    """Re-add the items an admin added to this run before a restart; returns how many."""
    if not rec.has_text:
        if journal.path.is_file():
            logger.warning("%s ignored: this model cannot place items from text", journal.path)
        return 0
    assert rec.towers is not None
    rec.embedding_store = EmbeddingStore(
        journal.path.with_name(EMBEDDINGS_FILE), max_length=rec.towers.item_encoder.max_length
    )
    vocabulary = genre_vocabulary(rec.known_genres, settings.extra_genres)
    items = []
    for item in journal.read(vocabulary=vocabulary):
        if item.id in rec.index_of:
            logger.warning(
                "%s: item %r skipped, the trained model has that id", journal.path, item.id
            )
            continue
        genres = tuple(dict.fromkeys(vocabulary[g.lower()] for g in item.genres))
        items.append(NewItem(item.id, item.title, genres, item.description))
    added = rec.add_items(items)
    rec.embedding_store.retain(rec.texts[rec.n_trained :])
    return len(added)


def load_served(settings: Settings, ckpt_dir: Path | None = None) -> ServedModel:
    """Load the newest checkpoint under the model path (or ``ckpt_dir``), ready to serve."""
    ckpt = load_checkpoint(ckpt_dir or Path(settings.model_path))
    rec = Recommender.from_checkpoint(
        ckpt,
        device=resolve_device(settings.device),
        fold_in_weight=settings.fold_in_weight,
        encoder_passes=settings.encoder_passes,
    )
    if rec.towers is not None:
        rec.towers.max_length = settings.max_text_tokens
    journal = Journal(journal_path(ckpt))
    added = replay_added_items(rec, journal, settings)
    logger.info(
        "loaded %s from %s (%s; %d admin-added items)",
        ckpt.model_version,
        ckpt.path,
        "text towers" if rec.has_text else "MF only",
        added,
    )
    return ServedModel(checkpoint=ckpt, recommender=rec, journal=journal)


@dataclass(frozen=True)
class ReloadResult:
    """What a reload did."""

    reloaded: bool
    model_version: str | None
    detail: str


class ModelHolder:
    """The served model (or none yet) and how it got there."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.served: ServedModel | None = None
        self.status: Status = "loading"
        self.error: str | None = None
        # Held by admin writes and by reloads: an item added while a reload replays the
        # journal would otherwise miss the new model.
        self.write_lock = threading.Lock()
        self._reload_lock = threading.Lock()
        self.reloads = {"ok": 0, "failed": 0, "unchanged": 0}
        self._stop = threading.Event()

    def load(self) -> None:
        """The first load (start-up): ``ready``, or ``no-model`` saying why."""
        try:
            served = load_served(self.settings)
        except CheckpointError as err:
            logger.warning("serving without a model: %s", err)
            self.error = str(err)
            self.status = "no-model"
            return
        except Exception as err:  # a damaged model must not take the process down
            logger.exception("could not load the model under %s", self.settings.model_path)
            self.error = f"{type(err).__name__}: {err}"
            self.status = "no-model"
            return
        self.served, self.status = served, "ready"
        self._settle()

    def start(self, then: Callable[[], None] | None = None) -> threading.Thread:
        """Load in a background thread (the port answers meanwhile, ``loading``).

        ``then`` runs in that thread after the load, whatever its outcome.
        """

        def run() -> None:
            try:
                self.load()
            finally:
                if then is not None:
                    then()

        thread = threading.Thread(target=run, name="fedrec-model-load", daemon=True)
        thread.start()
        return thread

    def reload(self) -> ReloadResult:
        """Load the newest checkpoint if it is not the one served, and swap it in."""
        with self._reload_lock:
            current = self.served
            try:
                newest = checkpoint_dir(Path(self.settings.model_path))
            except CheckpointError as err:
                return self._refused(current, str(err))
            if current is not None and newest.resolve() == current.checkpoint.path.resolve():
                self.reloads["unchanged"] += 1
                return ReloadResult(False, current.version, "the newest checkpoint is served")
            with self.write_lock:
                try:
                    served = load_served(self.settings, newest)
                except Exception as err:  # any broken checkpoint is refused, never served
                    logger.warning("reload refused, %s does not load: %s", newest, err)
                    return self._refused(current, f"{newest} does not load: {err}")
                self.served, self.status, self.error = served, "ready", None
                old = current.version if current is not None else "nothing"
                del current  # the replaced model: gone before the heap is settled
                self._settle()
            self.reloads["ok"] += 1
            logger.info("reloaded: serving %s (was %s)", served.version, old)
            return ReloadResult(True, served.version, f"now serving {served.version}")

    def _settle(self) -> None:
        if self.settings.freeze_heap:
            logger.debug("heap settled in %.2f s", settle_heap())

    def _refused(self, current: ServedModel | None, why: str) -> ReloadResult:
        self.reloads["failed"] += 1
        version = current.version if current is not None else None
        return ReloadResult(False, version, f"reload refused: {why}")

    def watch(self, interval_s: float) -> threading.Thread:
        """Reload every ``interval_s`` seconds until :meth:`stop` (after the first load)."""

        def loop() -> None:
            while not self._stop.wait(interval_s):
                if self.status != "loading":
                    self.reload()

        thread = threading.Thread(target=loop, name="fedrec-model-watch", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        """Stop watching for new checkpoints."""
        self._stop.set()
