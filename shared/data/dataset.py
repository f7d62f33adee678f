"""In-memory data types every loader produces and every trainer consumes.

Ids are contiguous integer indices (``0..n-1``); the raw ids from the source files are
kept beside them so the API can speak the user's language (MovieLens movie ids, titles).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class ItemCatalog:
    """Items, indexed ``0..n_items-1``, with the text the encoder reads.

    ``texts[i]`` is a single line built from title, year, genres and tags when present,
    e.g. ``"Toy Story (1995). Genres: Animation, Children's, Comedy."``.
    """

    raw_ids: list[str]
    titles: list[str]
    genres: list[list[str]]
    texts: list[str]
    years: list[int | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.raw_ids)


@dataclass(frozen=True)
class UserInfo:
    """Optional user side information, indexed ``0..n_users-1`` (None where unknown)."""

    raw_ids: list[str]
    ages: list[int | None] = field(default_factory=list)
    genders: list[str | None] = field(default_factory=list)
    occupations: list[str | None] = field(default_factory=list)


@dataclass(frozen=True)
class Interactions:
    """A table of (user, item, rating, timestamp) rows, all arrays of equal length."""

    users: np.ndarray  # int64, 0..n_users-1
    items: np.ndarray  # int64, 0..n_items-1
    ratings: np.ndarray  # float32
    timestamps: np.ndarray  # int64 (seconds; 0 when the source has none)

    def __len__(self) -> int:
        return int(self.users.shape[0])

    def subset(self, mask_or_index: np.ndarray) -> Interactions:
        """Rows selected by a boolean mask or an index array."""
        return Interactions(
            users=self.users[mask_or_index],
            items=self.items[mask_or_index],
            ratings=self.ratings[mask_or_index],
            timestamps=self.timestamps[mask_or_index],
        )


@dataclass(frozen=True)
class Dataset:
    """A loaded data set: interactions plus item (and maybe user) metadata."""

    name: str
    interactions: Interactions
    items: ItemCatalog
    n_users: int
    user_raw_ids: list[str]
    users: UserInfo | None = None

    @property
    def n_items(self) -> int:
        """Number of items in the catalogue (rated or not)."""
        return len(self.items)


@dataclass(frozen=True)
class Split:
    """Leave-last-out split: per user one test item, one validation item, the rest train.

    ``test_items[u]`` / ``valid_items[u]`` are item indices, or ``-1`` for users with too
    few interactions to hold one out. ``train`` holds every remaining interaction.
    """

    train: Interactions
    valid_items: np.ndarray  # int64 [n_users]
    test_items: np.ndarray  # int64 [n_users]
    n_users: int
    n_items: int

    def train_items_of(self, user: int) -> np.ndarray:
        """Item indices the user interacted with in the training part (sorted, unique)."""
        return np.unique(self.train.items[self.train.users == user])

    def train_items_by_user(self) -> list[np.ndarray]:
        """All users' training item sets at once (sorted, unique), in O(n log n)."""
        order = np.lexsort((self.train.items, self.train.users))
        users = self.train.users[order]
        items = self.train.items[order]
        bounds = np.searchsorted(users, np.arange(self.n_users + 1))
        return [np.unique(items[bounds[u] : bounds[u + 1]]) for u in range(self.n_users)]
