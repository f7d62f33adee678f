"""Pick the loader for a :class:`DataConfig`, and load the split once per process.

``dataset`` names the format; ``data_path`` the data:

- ``ml-100k`` with an empty path: the embedded MovieLens-100K (fetched once, cached);
- ``ml-100k`` / ``ml-1m`` / ``ml-latest`` with a path: that GroupLens folder;
- ``generic``: the path is a ratings CSV; an ``items.csv`` beside it is used if present.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

from fedrec.shared.config import DataConfig
from fedrec.shared.data.catalog_file import read_catalog
from fedrec.shared.data.dataset import Dataset, ItemCatalog, Split
from fedrec.shared.data.generic import load_generic
from fedrec.shared.data.movielens import (
    load_ml1m,
    load_ml100k,
    load_ml100k_embedded,
    load_ml_latest,
)
from fedrec.shared.data.splits import leave_last_out
from fedrec.shared.errors import DataError

logger = logging.getLogger(__name__)

GENERIC_ITEMS_FILE = "items.csv"

_EXPECTED = {
    "ml-100k": "an ml-100k folder holding u.data, u.item and u.user",
    "ml-1m": "an ml-1m folder holding ratings.dat, movies.dat and users.dat",
    "ml-latest": "an ml-latest(-small) folder holding ratings.csv, movies.csv (and tags.csv)",
    "generic": "a ratings CSV (header user,item[,rating][,timestamp]), with an optional "
    "items.csv beside it",
}


def _generic(path: Path) -> Dataset:
    ratings = path / "ratings.csv" if path.is_dir() else path
    if not ratings.is_file():
        raise DataError(
            f"file not found; data-path must name {_EXPECTED['generic']}", path=str(ratings)
        )
    items = ratings.parent / GENERIC_ITEMS_FILE
    use_items = items.is_file() and items.resolve() != ratings.resolve()
    return load_generic(ratings, items_path=items if use_items else None)


def load_dataset(cfg: DataConfig) -> Dataset:
    """Load the data set ``cfg`` names (see the module docstring for the dispatch)."""
    if cfg.data_source == "node":
        # Nobody's ratings are held centrally then; loading them here would be a bug.
        raise DataError(
            "data-source=node: the clients hold their own data (node config data-dir) and "
            "data-path names the catalogue only; there is no data set to load here"
        )
    if not cfg.data_path:
        if cfg.dataset == "ml-100k":
            return load_ml100k_embedded()
        raise DataError(
            f"dataset={cfg.dataset} needs data-path: {_EXPECTED[cfg.dataset]} "
            "(download from https://grouplens.org/datasets/movielens/)"
        )
    path = Path(cfg.data_path).expanduser()
    if not path.exists():
        raise DataError(
            f"no such file or folder; for dataset={cfg.dataset} data-path must name "
            f"{_EXPECTED[cfg.dataset]}",
            path=str(path),
        )
    logger.info("loading %s from %s", cfg.dataset, path)
    if cfg.dataset == "ml-100k":
        return load_ml100k(path)
    if cfg.dataset == "ml-1m":
        return load_ml1m(path)
    if cfg.dataset == "ml-latest":
        return load_ml_latest(path)
    return _generic(path)


def load_catalog(cfg: DataConfig) -> ItemCatalog:
    """The item catalogue alone: what a server needs (no one's ratings under ``node``).

    ``data-source = node``: ``data-path`` is the catalogue file; otherwise the catalogue of
    the data set ``cfg`` names.
    """
    if cfg.data_source == "node":
        return read_catalog(cfg.data_path)
    return load_dataset(cfg).items


@functools.lru_cache(maxsize=4)
def load_split(cfg: DataConfig) -> tuple[Dataset, Split]:
    """Return the data set and its leave-last-out split, loaded once per process and config.

    Every simulated client calls this, so the result is cached: treat it as read-only.
    """
    dataset = load_dataset(cfg)
    split = leave_last_out(
        dataset.interactions,
        n_users=dataset.n_users,
        n_items=dataset.n_items,
        implicit_threshold=cfg.implicit_threshold,
        seed=cfg.seed,
    )
    logger.info(
        "%s split: %d train rows, %d users with a test item, %d with a validation item",
        dataset.name,
        len(split.train),
        int((split.test_items >= 0).sum()),
        int((split.valid_items >= 0).sum()),
    )
    return dataset, split
