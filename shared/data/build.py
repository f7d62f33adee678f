"""Turn parsed rows (ratings, items, users) into a validated :class:`Dataset`.

Every format's loader ends here, so the rules are the same everywhere: ratings must be
finite numbers, timestamps ``>= 0``, every rated item must be in the items file, and no
(user, item) pair may repeat. Users are indexed in sorted raw-id order; items in sorted
raw-id order of the items file (items nobody rated stay in the catalogue as cold items).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from fedrec.shared.data.catalog import ItemRows, build_catalog, catalog_from_ids
from fedrec.shared.data.dataset import Dataset, Interactions, UserInfo
from fedrec.shared.data.validate import (
    check_duplicate_pairs,
    check_finite,
    check_non_negative,
    check_unique,
    index_ids,
    lookup_ids,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RatingRows:
    """Ratings as read from a file, in file order, before indexing.

    ``users``/``items`` hold raw ids (int64, or str for the generic format); ``lines``
    the 1-based line (or parquet row) of each row; ``columns`` the file's names for the
    user, item, rating and timestamp columns, used in error messages.
    """

    path: str
    users: np.ndarray
    items: np.ndarray
    ratings: np.ndarray
    timestamps: np.ndarray
    lines: np.ndarray
    columns: tuple[str, str, str, str] = ("user", "item", "rating", "timestamp")


@dataclass(frozen=True)
class UserRows:
    """User side information as read from a users file, in file order."""

    path: str
    raw_ids: np.ndarray
    lines: np.ndarray
    ages: list[int | None]
    genders: list[str | None]
    occupations: list[str | None]


def _user_info(raw_ids: Sequence[str], rows: UserRows) -> UserInfo:
    """Align side information with the rated users (None for users the file lacks)."""
    check_unique(rows.raw_ids, rows.lines, path=rows.path, column="user id")
    where = {str(raw): k for k, raw in enumerate(rows.raw_ids.tolist())}
    found = [where.get(raw) for raw in raw_ids]
    unknown = sum(k is None for k in found)
    if unknown:
        logger.warning("%s: no side information for %d rated user(s)", rows.path, unknown)
    return UserInfo(
        raw_ids=list(raw_ids),
        ages=[rows.ages[k] if k is not None else None for k in found],
        genders=[rows.genders[k] if k is not None else None for k in found],
        occupations=[rows.occupations[k] if k is not None else None for k in found],
    )


def assemble_dataset(
    name: str,
    ratings: RatingRows,
    *,
    items: ItemRows | None = None,
    tags: Mapping[str, Sequence[str]] | None = None,
    users: UserRows | None = None,
) -> Dataset:
    """Validate the rows and index them into a :class:`Dataset`.

    Without ``items`` the catalogue is the set of rated item ids, with the id as title.
    """
    user_col, item_col, rating_col, time_col = ratings.columns
    check_finite(ratings.ratings, ratings.lines, path=ratings.path, column=rating_col)
    check_non_negative(ratings.timestamps, ratings.lines, path=ratings.path, column=time_col)
    if items is not None:
        catalog = build_catalog(items, tags=tags)
        item_index = lookup_ids(
            ratings.items,
            {raw: k for k, raw in enumerate(catalog.raw_ids)},
            ratings.lines,
            path=ratings.path,
            column=item_col,
            missing_hint=f"the items file {items.path}; every rated item needs a row there",
        )
    else:
        raw_items, item_index = index_ids(ratings.items)
        catalog = catalog_from_ids(raw_items)
    user_raw, user_index = index_ids(ratings.users)
    check_duplicate_pairs(
        user_index,
        item_index,
        ratings.lines,
        path=ratings.path,
        user_raw=user_raw,
        item_raw=catalog.raw_ids,
        columns=(user_col, item_col),
    )
    interactions = Interactions(
        users=user_index.astype(np.int64),
        items=item_index.astype(np.int64),
        ratings=ratings.ratings.astype(np.float32),
        timestamps=ratings.timestamps.astype(np.int64),
    )
    info = _user_info(user_raw, users) if users is not None else None
    n_rated = int(np.unique(item_index).size)
    logger.info(
        "%s: %d users, %d items (%d never rated), %d interactions",
        name,
        len(user_raw),
        len(catalog),
        len(catalog) - n_rated,
        len(interactions),
    )
    return Dataset(
        name=name,
        interactions=interactions,
        items=catalog,
        n_users=len(user_raw),
        user_raw_ids=user_raw,
        users=info,
    )
