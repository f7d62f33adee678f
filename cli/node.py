"""``fedrec node ...``: what an edge node's operator runs on the device itself.

The key that seals the node's private state, the node's own data (catalogue and
interactions) and feedback. The walkthrough, command by command: docs/deployment.md,
"Node-local data and feedback".
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

node_app = typer.Typer(no_args_is_help=True)

DataDirOpt = Annotated[
    Path, typer.Option("--data-dir", help="The node's data folder (node config data-dir).")
]


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


@node_app.command("catalog")
def catalog(
    data_dir: DataDirOpt,
    path: Annotated[Path, typer.Argument(help="The run's catalogue file (fedrec-catalog/1).")],
) -> None:
    """Import the catalogue (the server's data-path file, or a run's catalog.json)."""
    from fedrec.client.localstore import NodeStore

    version = NodeStore(data_dir).import_catalog(path)
    typer.echo(f"catalogue {version[:12]} in {data_dir}")


@node_app.command("record")
def record(
    data_dir: DataDirOpt,
    user: Annotated[str, typer.Option(help="The user's id on this device.")],
    item: Annotated[str, typer.Option(help="The item's id in the catalogue.")],
    rating: Annotated[float | None, typer.Option(help="A rating (explicit feedback).")] = None,
    like: Annotated[bool, typer.Option("--like", help="The user liked the item.")] = False,
    view: Annotated[bool, typer.Option("--view", help="The user viewed the item.")] = False,
    timestamp: Annotated[
        int | None, typer.Option(help="Seconds since the epoch (default: now).")
    ] = None,
) -> None:
    """Record one interaction: it is training data from the next round on."""
    from fedrec.client.localstore import Interaction, NodeStore

    given = {"rating": rating is not None, "like": like, "view": view}
    kinds = [kind for kind, present in given.items() if present]
    if len(kinds) != 1:
        raise typer.BadParameter("give exactly one of --rating R, --like, --view")
    row = Interaction(user, item, kinds[0], rating, timestamp)
    NodeStore(data_dir).record([row])
    typer.echo(f"recorded {kinds[0]} of {item} by {user}")


@node_app.command("import")
def import_cmd(
    data_dir: DataDirOpt,
    path: Annotated[
        Path, typer.Argument(help="A CSV: header user,item[,rating][,timestamp][,kind].")
    ],
    hold_out_newest: Annotated[
        bool,
        typer.Option(
            "--hold-out-newest",
            help="Hold each user's newest imported row out for evaluation (3+ rows only).",
        ),
    ] = False,
) -> None:
    """Import the device's interaction history (one transaction: all rows or none)."""
    from fedrec.client.localstore import NodeStore

    n = NodeStore(data_dir).import_csv(path, holdout_newest=hold_out_newest)
    typer.echo(f"imported {n} interaction(s) into {data_dir}")


@node_app.command("recommend")
def recommend(
    data_dir: DataDirOpt,
    user: Annotated[str, typer.Option(help="The user's id on this device.")],
    model: Annotated[
        Path, typer.Option("--model", help="The global model: a run or checkpoint folder.")
    ],
    state_dir: Annotated[
        Path | None,
        typer.Option(help="The node's state-dir: use the user's private factor of that run."),
    ] = None,
    state_key_file: Annotated[
        Path | None, typer.Option(help="The state key (else $FEDREC_STATE_KEY).")
    ] = None,
    run_id: Annotated[
        str | None, typer.Option(help="The run whose state to use (default: the model's).")
    ] = None,
    k: Annotated[int, typer.Option("-k", help="How many items.")] = 10,
) -> None:
    """Rank items for a user on the device: nothing about the user leaves it."""
    import os

    from fedrec.client.localstore import NodeStore
    from fedrec.client.ranking import load_global_items, recommend_on_device
    from fedrec.client.sealing import node_key
    from fedrec.client.state import ClientStateStore

    items = load_global_items(model)
    factors = None
    if state_dir is not None:
        run = run_id or items.run_id
        if not run:
            raise typer.BadParameter("the model came without its RUN_ID; give --run-id")
        node_config = {"state-key-file": str(state_key_file)} if state_key_file else {}
        key = node_key(node_config, os.environ)
        state = ClientStateStore(state_dir / f"run-{run}", key).load()
        factors = state.user_factors if state is not None else None
    found = recommend_on_device(NodeStore(data_dir), items, user, private_factors=factors, k=k)
    for rank, rec in enumerate(found, 1):
        typer.echo(f"{rank:>3}  {rec.item}  {rec.score:8.4f}  {rec.title}")


@node_app.command(
    "start", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)
def start(
    ctx: typer.Context,
    max_restarts: Annotated[
        int, typer.Option(help="Give up after this many restarts (0: never give up).")
    ] = 0,
    backoff: Annotated[float, typer.Option(help="Seconds before the first restart.")] = 1.0,
    backoff_max: Annotated[
        float, typer.Option(help="The most seconds between restarts (the wait doubles).")
    ] = 60.0,
) -> None:
    """Run `flower-supernode ARGS...` (after `--`) and restart it with back-off when it fails.

    The node config's device is checked first: a SuperNode that could never train is not
    started at all.
    """
    from flwr.common.config import parse_config_args

    from fedrec.shared.deploy.supervise import Backoff, supervise
    from fedrec.shared.device import node_device

    command = list(ctx.args)
    if not command:
        raise typer.BadParameter("give the SuperNode's command after `--`")
    if "--node-config" in command[:-1]:
        node_config = parse_config_args([command[command.index("--node-config") + 1]])
        node_device(node_config)  # NodeConfigError: exit 2 with the reason and the fix
    status = supervise(
        command,
        backoff=Backoff(first=backoff, most=backoff_max),
        max_restarts=max_restarts or None,
        notify=lambda line: typer.echo(f"fedrec node start: {line}", err=True),
    )
    raise typer.Exit(status)
