"""``recommender ui``: the MLflow UI on the project's tracking store, bound to 127.0.0.1."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from models.store import check_server, is_server
from recommender.cli._common import config, console
from recommender.errors import RecommenderError


def ui_command(cfg, port: int) -> list[str]:
    if not cfg.mlflow_uri.startswith("sqlite:") and "://" in cfg.mlflow_uri and not cfg.mlflow_uri.startswith("file:"):
        raise RecommenderError(f"the tracking store {cfg.mlflow_uri} is not a local store; its own server shows the UI")
    return [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", cfg.mlflow_uri, "--host", "127.0.0.1",
            "--port", str(port), "--workers", "1"]


def ui(ctx: typer.Context, port: Annotated[int, typer.Option(help="Port on 127.0.0.1")] = 5000) -> None:
    """Start the MLflow UI on the project's tracking store (Ctrl-C to stop); a team server already serves one."""
    cfg = config(ctx)
    if is_server(cfg.mlflow_uri):
        check_server(cfg.mlflow_uri)
        console.print(f"the team tracking server serves the MLflow UI: open {cfg.mlflow_uri} in a browser "
                      "(it asks for your user name and password if accounts are on)", highlight=False)
        return
    cfg.home.mkdir(parents=True, exist_ok=True)
    cmd = ui_command(cfg, port)
    console.print(f"MLflow UI for {cfg.mlflow_uri} at http://127.0.0.1:{port} (Ctrl-C to stop)")
    sys.stdout.flush()
    # become the MLflow server: signals (Ctrl-C, terminate) reach it directly
    os.execve(cmd[0], cmd, {**os.environ, "MLFLOW_TRACKING_URI": cfg.mlflow_uri})
