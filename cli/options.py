"""Options and helpers shared by the CLI commands."""

from __future__ import annotations

import logging
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.logging import RichHandler

ConfigOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--config", "-c", help="Setting KEY=VALUE (keys of \\[tool.flwr.app.config]); repeatable."
    ),
]
ScenarioOpt = Annotated[
    str | None,
    typer.Option(
        "--scenario", "-s", help="A scenario in simulations/scenarios (name or .toml path)."
    ),
]


def setup_logging(verbose: bool = False) -> None:
    """Concise progress logs from fedrec; Flower and Ray only when verbose."""
    handler: logging.Handler
    if sys.stderr.isatty():
        handler = RichHandler(
            console=Console(stderr=True), show_path=False, markup=False, show_time=True
        )
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:  # logs, CI: one unwrapped line per record
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    # Other libraries' INFO lines (e.g. alembic's "setup plugin ..." when Flower's state
    # starts) are start-up noise: the root stays at WARNING, fedrec's own lines at INFO.
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)
    logging.getLogger("fedrec").setLevel(logging.INFO)
    quiet = logging.INFO if verbose else logging.WARNING
    for name in ("flwr", "ray", "opacus", "httpx", "uvicorn.access"):
        logging.getLogger(name).setLevel(quiet)


def overrides_from(config: list[str] | None, scenario: str | None) -> dict[str, Any]:
    """Scenario file first, then ``-c KEY=VALUE`` pairs (values parsed as TOML when they can be)."""
    from fedrec.simulation.scenarios import load_scenario, parse_override

    out: dict[str, Any] = load_scenario(scenario) if scenario else {}
    for item in config or []:
        key, value = parse_override(item)
        out[key] = value
    return out
