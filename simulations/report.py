"""The benchmark base: one registry of reports, one way to save a result and re-render it.

A benchmark measures and returns a result dict; :func:`save` writes it as
``<name>.json`` and renders ``<name>.md`` (and ``<name>.png`` where the report has a plot)
beside it; :func:`render_only` re-renders from the JSON alone, which is what every
``fedrec bench ... --render-only`` does. Renderers live under
:mod:`fedrec.simulations.reports`, one module per report kind, each with
``markdown(result, name) -> str`` and, where :attr:`Report.plot` says so,
``plot(result, path) -> None``. They are imported only when a report is rendered, so the
CLI and the registry stay cheap to import.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any, cast

from fedrec.simulations.measure import machine_stamp

__all__ = [
    "ALIASES",
    "REPORTS",
    "Report",
    "kind_of",
    "machine_stamp",
    "render",
    "render_only",
    "run_settings",
    "save",
    "timestamp",
    "write_json",
]

Result = dict[str, Any]


@dataclass(frozen=True)
class Report:
    """A report kind: the renderer module under ``fedrec.simulations.reports``."""

    module: str
    plot: bool = False

    def _load(self) -> ModuleType:
        return importlib.import_module(f"fedrec.simulations.reports.{self.module}")

    def markdown(self, result: Result, name: str) -> str:
        """The Markdown of ``result`` saved under the stem ``name`` (it names the plot)."""
        fn = cast(Callable[[Result, str], str], self._load().markdown)
        return fn(result, name)

    def draw(self, result: Result, path: Path) -> None:
        """Write the report's plot to ``path`` (nothing for a report without one)."""
        if self.plot:
            fn = cast(Callable[[Result, Path], None], self._load().plot)
            fn(result, path)


# Report kind (the command's default stem) -> its renderer.
REPORTS: dict[str, Report] = {
    "attack": Report("attack"),
    "coldstart": Report("coldstart"),
    "coldstart-intents": Report("intents"),
    "coldstart-liked": Report("liked"),
    "cooccurrence": Report("cooccurrence", plot=True),
    "cooccurrence-scale": Report("cooccurrence_scale", plot=True),
    "cooccurrence-tuning": Report("cooccurrence_tuning"),
    "deployment": Report("deployment"),
    "encoder": Report("encoder"),
    "federation": Report("federation", plot=True),
    "privacy": Report("privacy", plot=True),
    "privacy-audit": Report("audit"),
    "quality": Report("quality", plot=True),
    "secagg": Report("secagg"),
    "serve": Report("serve"),
}

# Reports under docs/benchmarks/ saved under another stem than their kind (``--name``).
ALIASES: dict[str, str] = {
    "baselines": "quality",
    "coldstart-dp": "coldstart",
    "cooccurrence-tuned": "cooccurrence",
    "coldstart-tuned-liked": "coldstart-liked",
    "coldstart-dp-itemhead": "coldstart",
    "coldstart-itemhead": "coldstart",
    "encoder-h200": "encoder",
    "federation-hybrid": "federation",
    "privacy-scale": "privacy",
    "privacy-user": "privacy",
}


def kind_of(name: str) -> str:
    """The report kind of a saved stem: an alias, or the stem itself when it is a kind."""
    kind = ALIASES.get(name, name)
    if kind not in REPORTS:
        raise KeyError(
            f"no report renders {name!r}: add its kind to REPORTS or the stem to ALIASES "
            "in fedrec.simulations.report"
        )
    return kind


def timestamp() -> str:
    """When a result was measured, as its JSON stores it (UTC, to the second)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def run_settings(run_config: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    """A result's ``settings``: the run config it measured, plus the benchmark's own knobs."""
    return {**run_config, **extra}


def render(result: Result, output_dir: Path, name: str, *, kind: str | None = None) -> Path:
    """Write ``<name>.md`` (and its plot) from ``result``; return the Markdown's path."""
    report = REPORTS[kind or kind_of(name)]
    output_dir.mkdir(parents=True, exist_ok=True)
    # Markdown first: a renderer that refuses a result (an old JSON) does so before any write.
    text = report.markdown(result, name)
    report.draw(result, output_dir / f"{name}.png")
    path = output_dir / f"{name}.md"
    path.write_text(text)
    return path


def write_json(result: Result, output_dir: Path, name: str) -> Path:
    """Write ``<name>.json`` alone (a long benchmark's partial result, or before rendering)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / f"{name}.json"
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return path


def save(result: Result, output_dir: Path, name: str, *, kind: str | None = None) -> Path:
    """Write ``<name>.json`` and render its report; return the Markdown's path."""
    write_json(result, output_dir, name)
    return render(result, output_dir, name, kind=kind)


def render_only(output_dir: Path, name: str, *, kind: str | None = None) -> Path:
    """Re-render ``<name>.md`` from the saved ``<name>.json``; ``ValueError`` if there is none."""
    source = output_dir / f"{name}.json"
    if not source.exists():
        raise ValueError(f"{source} not found: run the benchmark first")
    return render(json.loads(source.read_text()), output_dir, name, kind=kind)
