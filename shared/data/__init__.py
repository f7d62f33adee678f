"""Data: loaders for MovieLens and generic CSVs, the leave-last-out split, partitions.

Start with :func:`load_split` (cached; what every client calls) or :func:`load_dataset`.
"""

from fedrec.shared.data.catalog import item_text, parse_year
from fedrec.shared.data.catalog_file import catalog_json, catalog_version, read_catalog
from fedrec.shared.data.dataset import Dataset, Interactions, ItemCatalog, Split, UserInfo
from fedrec.shared.data.generic import load_generic
from fedrec.shared.data.load import load_catalog, load_dataset, load_split
from fedrec.shared.data.movielens import (
    load_ml1m,
    load_ml100k,
    load_ml100k_embedded,
    load_ml_latest,
)
from fedrec.shared.data.partition import partition_users
from fedrec.shared.data.sources import ML100KFiles, default_cache_dir, ensure_ml100k
from fedrec.shared.data.splits import implicit_view, leave_last_out

__all__ = [
    "Dataset",
    "Interactions",
    "ItemCatalog",
    "ML100KFiles",
    "Split",
    "UserInfo",
    "catalog_json",
    "catalog_version",
    "default_cache_dir",
    "ensure_ml100k",
    "implicit_view",
    "item_text",
    "leave_last_out",
    "load_catalog",
    "load_dataset",
    "load_generic",
    "load_ml100k",
    "load_ml100k_embedded",
    "load_ml1m",
    "load_ml_latest",
    "load_split",
    "parse_year",
    "partition_users",
    "read_catalog",
]
