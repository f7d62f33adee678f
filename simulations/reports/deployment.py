"""The deployed-round report; its renderer lives in :mod:`fedrec.simulations.bench_deployment`."""

from __future__ import annotations

from typing import Any


def markdown(result: dict[str, Any], name: str) -> str:
    """The report of ``result`` saved as ``<name>``."""
    from fedrec.simulations.bench_deployment import deployment_markdown

    return deployment_markdown(result)
