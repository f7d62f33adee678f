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
ServerOpt = Annotated[
    str | None, typer.Option("--server", help="The service's base URL (fedrec serve).")
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
    path: Annotated[
        Path | None,
        typer.Argument(help="The run's catalogue file (fedrec-catalog/1); or use --server."),
    ] = None,
    server: ServerOpt = None,
) -> None:
    """Import the catalogue: a file (a run's catalog.json, the server's) or the service's."""
    from fedrec.client.localstore import NodeStore

    store = NodeStore(data_dir)
    if (path is None) == (server is None):
        raise typer.BadParameter("give the catalogue file or --server URL (one of them)")
    if server is not None:
        from fedrec.client.model_pull import fetch_catalog

        version = fetch_catalog(store, server)
    else:
        assert path is not None
        version = store.import_catalog(path)
    typer.echo(f"catalogue {version[:12]} in {data_dir}")


@node_app.command("pull")
def pull(
    data_dir: DataDirOpt,
    server: Annotated[str, typer.Option("--server", help="The service's base URL.")],
    public_key: Annotated[
        str | None,
        typer.Option(
            help="The service's Ed25519 public key (base64, as GET /v1/signing-key shows it) "
            "to pin; without it the key first seen is pinned."
        ),
    ] = None,
) -> None:
    """Fetch the global item model for on-device ranking, verified against the pinned key."""
    import base64

    from fedrec.client.model_pull import pull_item_model

    key = base64.b64decode(public_key) if public_key else None
    got = pull_item_model(data_dir, server, public_key=key)
    state = "updated" if got.updated else "current"
    typer.echo(f"item model {got.model_version} ({got.sha256[:12]}) {state} in {data_dir}")


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
        Path | None,
        typer.Option(
            "--model",
            help="The global model: a run or checkpoint folder (default: the model "
            "`fedrec node pull` fetched).",
        ),
    ] = None,
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

    store = NodeStore(data_dir)
    if model is not None:
        items = load_global_items(model)
    else:
        from fedrec.client.model_pull import global_items_of, load_pulled_model

        items = global_items_of(load_pulled_model(data_dir), store)
    factors = None
    if state_dir is not None:
        run = run_id or items.run_id
        if not run:
            raise typer.BadParameter("the model came without its RUN_ID; give --run-id")
        node_config = {"state-key-file": str(state_key_file)} if state_key_file else {}
        key = node_key(node_config, os.environ)
        state = ClientStateStore(state_dir / f"run-{run}", key).load()
        factors = state.user_factors if state is not None else None
    found = recommend_on_device(store, items, user, private_factors=factors, k=k)
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
