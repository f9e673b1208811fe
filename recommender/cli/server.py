"""``recommender server``: the team's MLflow tracking server on PostgreSQL (team mode)."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from recommender.cli._common import config, console, console_err, value
from recommender.cli.users import Permission


def server(
    ctx: typer.Context,
    backend_store_uri: Annotated[str, typer.Option("--backend-store-uri", envvar="RECOMMENDER_BACKEND_STORE_URI", show_envvar=True,
                                                   help="postgresql://USER[:PASSWORD]@HOST:PORT/DATABASE: runs, registry and (with --auth) accounts")],
    artifacts_destination: Annotated[str, typer.Option("--artifacts-destination", help="Folder or URL (s3://, gs://, ...) where the server keeps artifacts; clients never access it directly")],
    host: Annotated[str, typer.Option(help="Interface to listen on; anything but loopback needs TLS in front")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port")] = 5000,
    auth: Annotated[bool, typer.Option("--auth", help="Ask every caller for a user name and password (MLflow basic auth; accounts on PostgreSQL too)")] = False,
    admin_username: Annotated[str, typer.Option("--admin-username", help="The admin account created on the first --auth start (password from MLFLOW_AUTH_ADMIN_PASSWORD)")] = "admin",
    default_permission: Annotated[Permission, typer.Option("--default-permission", help="What signed-in users may do where nothing was granted")] = Permission.READ,
    workers: Annotated[int, typer.Option(min=1, help="Server worker processes")] = 2,
    allowed_hosts: Annotated[str | None, typer.Option("--allowed-hosts", help="Host names clients use to reach it, comma-separated (MLflow refuses other Host headers when not on loopback)")] = None,
    request_timeout: Annotated[int, typer.Option("--request-timeout", min=1, help="Seconds one database statement of a request may run before it is cancelled (PostgreSQL statement_timeout)")] = 120,
    max_body_mb: Annotated[int, typer.Option("--max-body-mb", min=1, help="Largest request body (an artifact upload) the server accepts, in MB; larger ones get HTTP 413 and nothing is stored")] = 1024,
) -> None:
    """Start the shared MLflow tracking server: PostgreSQL store, served artifacts, optional accounts (Ctrl-C to stop)."""
    from recommender.team.server import plan_server, redact

    cfg, default_permission = config(ctx), value(default_permission)
    plan = plan_server(cfg.home, backend_store_uri, artifacts_destination, host=host, port=port, auth=auth,
                       admin_username=admin_username, default_permission=default_permission, workers=workers,
                       allowed_hosts=allowed_hosts, request_timeout=request_timeout,
                       max_body_mb=max_body_mb)
    for note in plan.warnings:
        console_err.print(f"[bold yellow]warning:[/] {note}", highlight=False)
    console.print(f"MLflow tracking server at {plan.url} (Ctrl-C to stop)\n  store: {redact(backend_store_uri)}\n"
                  f"  artifacts: {artifacts_destination} (served)\n  accounts: "
                  + (f"on, default permission {default_permission}" if auth else "off: anyone who can reach it may read and write"),
                  highlight=False)
    console.print(f"  limits: {request_timeout} s per database statement, {max_body_mb:,} MB per request body", highlight=False)
    console.print(f"  analysts: recommender --tracking-uri {plan.url} train ..."
                  + ("  (with MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD set)" if auth else ""), highlight=False)
    sys.stdout.flush()
    os.execve(plan.argv[0], plan.argv, plan.env)  # become the server: Ctrl-C and terminate reach it directly
