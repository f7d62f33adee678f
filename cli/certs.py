"""``fedrec certs ...``: the CA, the SuperLink's TLS certificate and SuperNode keys.

The walkthrough that uses these files, command by command: docs/deployment.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fedrec.shared.deploy import certs

certs_app = typer.Typer(no_args_is_help=True)

OutOpt = Annotated[Path, typer.Option("--out", help="Directory to write into (made 0700).")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Replace files that already exist.")]


@certs_app.command("ca")
def ca(
    out: OutOpt,
    days: Annotated[int, typer.Option(help="Validity of the CA certificate.")] = 3650,
    common_name: Annotated[str, typer.Option(help="The CA's name.")] = "fedrec deployment CA",
    force: ForceOpt = False,
) -> None:
    """A CA key and self-signed CA certificate: ca.key (keep offline) and ca.crt."""
    files = certs.make_ca(out, common_name=common_name, days=days, force=force)
    typer.echo(f"{files.key}  CA key: only `fedrec certs server --ca {out}` needs it")
    typer.echo(
        f"{files.cert}  CA certificate: flower-superlink --ssl-ca-certfile, "
        "flower-supernode --root-certificates, root-certificates in ~/.flwr/config.toml"
    )


@certs_app.command("server")
def server(
    ca_dir: Annotated[
        Path, typer.Option("--ca", help="Directory holding ca.key and ca.crt (`fedrec certs ca`).")
    ],
    host: Annotated[
        list[str],
        typer.Option(
            help="An IP address or DNS name clients use to reach the SuperLink; repeatable. "
            "Include 127.0.0.1: the SuperLink's ServerApp process connects to it over TLS."
        ),
    ],
    out: OutOpt,
    days: Annotated[int, typer.Option(help="Validity of the certificate.")] = 365,
    force: ForceOpt = False,
) -> None:
    """The SuperLink's TLS key and certificate (server.key, server.crt), signed by the CA."""
    files = certs.make_server_cert(ca_dir, out, host, days=days, force=force)
    typer.echo(f"{files.key}  flower-superlink --ssl-keyfile")
    typer.echo(f"{files.cert}  flower-superlink --ssl-certfile (for {', '.join(files.hosts)})")


@certs_app.command("node")
def node(
    out: OutOpt,
    name: Annotated[
        list[str] | None, typer.Option(help="A SuperNode's name (file stem); repeatable.")
    ] = None,
    count: Annotated[
        int | None, typer.Option(help="Instead of --name: node-1 ... node-COUNT.")
    ] = None,
    force: ForceOpt = False,
) -> None:
    """SuperNode key pairs for node authentication: NAME.key (private) and NAME.pub."""
    nodes = certs.make_node_keys(out, certs.node_names(name or [], count), force=force)
    for n in nodes:
        typer.echo(
            f"{n.private_key}  flower-supernode --auth-supernode-private-key (stays on the node)"
        )
        typer.echo(f"{n.public_key}  flwr supernode register {n.public_key} <connection>")
