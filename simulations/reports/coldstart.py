"""The cold-start report; its renderer lives in :mod:`fedrec.simulations.bench_coldstart`."""

from __future__ import annotations

from typing import Any


def markdown(result: dict[str, Any], name: str) -> str:
    """The report of ``result`` saved as ``<name>``."""
    from fedrec.simulations.bench_coldstart import coldstart_markdown

    return coldstart_markdown(result)
