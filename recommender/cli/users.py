"""``recommender users add|grant|list``: analysts' accounts on a team tracking server (``server --auth``)."""

from __future__ import annotations

import json
import os
from typing import Annotated

import typer
from rich.table import Table

from recommender.cli._common import choices, config, console, value
from recommender.team import PERMISSIONS

app = typer.Typer(help="Accounts and permissions on a team tracking server (run as an admin: MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD).",
                  no_args_is_help=True)
PASSWORD_ENV = "RECOMMENDER_NEW_PASSWORD"
Permission = choices("Permission", PERMISSIONS)


@app.command("add")
def add(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="The analyst's user name")],
    admin: Annotated[bool, typer.Option("--admin", help="Make the account an admin (may manage every account and resource)")] = False,
) -> None:
    """Create an account; the password is asked twice (or read from RECOMMENDER_NEW_PASSWORD), never an argument."""
    from recommender.team.accounts import add_user

    password = os.environ.get(PASSWORD_ENV) or typer.prompt(f"password for {username}", hide_input=True,
                                                           confirmation_prompt=True)
    uri = config(ctx).mlflow_uri
    add_user(uri, username, password, admin=admin)
    console.print(f"added {'admin ' if admin else ''}user {username} on {uri}", highlight=False)


@app.command("grant")
def grant(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="The analyst's user name")],
    permission: Annotated[Permission, typer.Option("--permission", help="READ, EDIT (log runs; add versions and move a champion), MANAGE (EDIT plus grants), DENY (not even read)")],
    experiment: Annotated[str | None, typer.Option("--experiment", help="An experiment, by name (e.g. import-substitution)")] = None,
    model: Annotated[str | None, typer.Option("--model", help="A registered model (e.g. import-substitution-SCO)")] = None,
) -> None:
    """Give a user a permission on one experiment or one registered model."""
    from recommender.team.accounts import grant as grant_permission

    console.print(grant_permission(config(ctx).mlflow_uri, username, value(permission), experiment=experiment, model=model),
                  highlight=False)


@app.command("list")
def list_(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table")] = False) -> None:
    """Every account, whether it is an admin, and what it was granted."""
    from recommender.team.accounts import list_users

    uri = config(ctx).mlflow_uri
    rows = list_users(uri)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title=f"accounts on {uri}")
    for column in ("user", "admin", "grants"):
        table.add_column(column)
    for row in rows:
        grants = "; ".join(f"{g['permission']} on {g['resource']} {g['name']}" for g in row["grants"]) or "-"
        table.add_row(row["username"], "yes" if row["admin"] else "", grants)
    console.print(table)

