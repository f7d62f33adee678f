"""Admin-added items: an append-only journal beside the run's checkpoints, replayed at start.

Each line of ``added-items.jsonl`` is either an item (added, or replacing an earlier line
of the same id) or ``{"deleted": "<id>"}``. The file is only ever appended to, so a line
that cannot be read (a torn write, an edit by hand, an item the current rules refuse) is
skipped with a warning naming the file and line, and left where it is for the operator.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Collection
from pathlib import Path

from pydantic import ValidationError

from fedrec.server.api.routing import InvalidJSON, parse_json
from fedrec.server.api.schemas import ItemId, NewItemRequest, RequestBody
from fedrec.shared.checkpoint import Checkpoint

logger = logging.getLogger(__name__)

ADDED_ITEMS_FILE = "added-items.jsonl"
# Their text embeddings (:mod:`fedrec.server.text_store`), so a restart need not re-encode.
EMBEDDINGS_FILE = "added-items.embeddings.npz"


class Deletion(RequestBody):
    """A journal line that removes an added item."""

    deleted: ItemId


def journal_path(ckpt: Checkpoint) -> Path:
    """Where a run's admin-added items are kept (beside its checkpoints)."""
    return ckpt.path.parent.parent / ADDED_ITEMS_FILE


def _reason(err: InvalidJSON | ValidationError) -> str:
    if isinstance(err, InvalidJSON):
        return str(err)
    first = err.errors(include_input=False, include_url=False)[0]
    where = ".".join(str(p) for p in first["loc"])
    return f"{where}: {first['msg']}" if where else str(first["msg"])


class Journal:
    """The append-only record of admin changes to a run's catalogue."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def read(self, *, vocabulary: Collection[str] = ()) -> list[NewItemRequest]:
        """The items the journal leaves in place, in the order they were first added.

        A line that is neither an item nor a deletion, or an item with a genre outside
        ``vocabulary`` (lower-case; empty: any), is skipped with a warning.
        """
        if not self.path.is_file():
            return []
        items: dict[str, NewItemRequest] = {}
        with self.path.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                if not raw.strip():
                    continue
                try:
                    data = parse_json(raw)
                    record: NewItemRequest | Deletion = (
                        Deletion.model_validate(data)
                        if isinstance(data, dict) and "deleted" in data
                        else NewItemRequest.model_validate(data)
                    )
                except (InvalidJSON, ValidationError) as err:
                    logger.warning(
                        "%s line %d skipped, not an item or a deletion (%s); the file is kept "
                        "as it is",
                        self.path,
                        number,
                        _reason(err),
                    )
                    continue
                if isinstance(record, Deletion):
                    items.pop(record.deleted, None)
                    continue
                unknown = [g for g in record.genres if vocabulary and g.lower() not in vocabulary]
                if unknown:
                    logger.warning(
                        "%s line %d skipped: genre(s) %s are not in the genre vocabulary",
                        self.path,
                        number,
                        ", ".join(unknown),
                    )
                    continue
                items[record.id] = record
        return list(items.values())

    def _append(self, line: str) -> None:
        with self._lock, self.path.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def put(self, item: NewItemRequest) -> None:
        """Record an added or replaced item."""
        self._append(item.model_dump_json())

    def delete(self, item_id: str) -> None:
        """Record that an added item was removed."""
        self._append(Deletion(deleted=item_id).model_dump_json())
