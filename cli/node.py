"""``fedrec node ...``: what an edge node's operator runs on the device itself.

The key that seals the node's private state; the walkthrough that uses it:
docs/deployment.md, "Node-local data and feedback".
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

node_app = typer.Typer(no_args_is_help=True)


@node_app.command("keygen")
def keygen(
    out: Annotated[
        Path, typer.Option("--out", help="The key file to write (0600, never replaced).")
    ],
) -> None:
    """A fresh state key: seals the node's user factors and privacy ledger (state-key-file)."""
    from fedrec.client.sealing import write_key_file

    write_key_file(out)
    typer.echo(f"{out}  --node-config \"state-key-file='{out.resolve()}'\"")
    typer.echo("keep it apart from state-dir: the node's state opens with this key only")
