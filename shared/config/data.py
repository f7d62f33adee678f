"""Which data a run reads (``dataset``, ``data-path``, ``data-source``, ...)."""

from __future__ import annotations

from dataclasses import dataclass

from fedrec.shared.config.validate import check

DATASETS = ("ml-100k", "ml-1m", "ml-latest", "generic")
DATA_SOURCES = ("dataset", "node")


@dataclass(frozen=True)
class DataConfig:
    """Which data, how it is split, and the implicit-feedback view."""

    dataset: str = "ml-100k"
    data_path: str = ""  # empty: the embedded ML-100K; else a folder or a ratings file
    implicit_threshold: float = 0.0  # keep ratings >= threshold as positives; 0 keeps all
    seed: int = 42
    # dataset: every client slices its users out of `dataset`; node: each node holds its own
    # users' data (node config data-dir) and data-path names the catalogue file only
    data_source: str = "dataset"

    def __post_init__(self) -> None:
        check(
            self.dataset in DATASETS,
            f"dataset must be one of {', '.join(DATASETS)}, got {self.dataset!r}",
        )
        check(
            self.data_source in DATA_SOURCES,
            f"data-source must be one of {', '.join(DATA_SOURCES)}, got {self.data_source!r}",
        )
        check(
            self.data_source != "node" or bool(self.data_path),
            "data-source=node needs data-path: the catalogue file (a run's catalog.json, or "
            "`fedrec catalog --out FILE`); the server reads no ratings then",
        )
        check(self.implicit_threshold >= 0, "implicit-threshold must be >= 0")
