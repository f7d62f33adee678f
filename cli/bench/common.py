"""What every ``fedrec bench`` command shares: the Typer group, options, list parsing."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

bench_app = typer.Typer(no_args_is_help=True)
console = Console()


# Options every bench command shares.
OutputDirOpt = Annotated[Path, typer.Option(help="Where the JSON, table and plot go.")]
RunsDirOpt = Annotated[Path, typer.Option(help="Scratch space for the benchmark's runs.")]
RenderOnlyOpt = Annotated[
    bool, typer.Option(help="Only re-render the report from the existing JSON.")
]


def rerender(output_dir: Path, name: str, kind: str) -> None:
    """The ``--render-only`` path of every bench command: re-render from the saved JSON."""
    from fedrec.simulations.report import render_only

    try:
        render_only(output_dir, name, kind=kind)
    except ValueError as err:
        raise typer.BadParameter(str(err)) from None


def ints(text: str) -> list[int]:
    """Comma-separated integers; a bad one is the user's error, said as such."""
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise typer.BadParameter(f"expected comma-separated integers, got {text!r}") from None


def round_sizes(text: str) -> list[int]:
    """Comma-separated round sizes, each >= 0 (0: skip that table)."""
    sizes = ints(text)
    if any(n < 0 for n in sizes):
        raise typer.BadParameter(f"round sizes must be >= 0, got {text!r}")
    return sizes


def floats(text: str) -> list[float]:
    """Comma-separated numbers; a bad one is the user's error, said as such."""
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise typer.BadParameter(f"expected comma-separated numbers, got {text!r}") from None
