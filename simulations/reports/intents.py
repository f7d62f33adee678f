"""The free-text intents report; its renderer lives in :mod:`fedrec.simulations.bench_intents`."""

from __future__ import annotations

from typing import Any


def markdown(result: dict[str, Any], name: str) -> str:
    """The report of ``result`` saved as ``<name>``."""
    from fedrec.simulations.bench_intents import markdown_report

    return markdown_report(result)
