"""What the serving model refuses, as exceptions the HTTP layer turns into answers."""

from __future__ import annotations

from collections.abc import Sequence


class UnknownItems(KeyError):
    """Item ids that are not in the model's catalogue."""

    def __init__(self, ids: Sequence[str]) -> None:
        self.ids = list(ids)
        super().__init__(f"unknown item id(s): {', '.join(self.ids)}")

    def __str__(self) -> str:
        return str(self.args[0])


class NoTextTower(ValueError):
    """The served model was trained without text towers (text-tower = off)."""


class TrainedItem(ValueError):
    """An item of the trained model, which the admin routes may not change or remove."""
