"""``recommender models``: every registered model version, which one is champion, and which are debris."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from recommender.cli._common import config, console


def models(ctx: typer.Context,
           as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False) -> None:
    """List registered model versions: champion, challengers, and versions of failed (e.g. killed) runs."""
    cfg = config(ctx)
    # MLflow and LightGBM: imported by the commands that use them
    from models.champion import registered_versions

    rows = registered_versions(cfg.store.client())
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        console.print(f"No registered models in {cfg.mlflow_uri}. Train one: recommender train --task import-substitution")
        return
    table = Table("model", "version", "status", "test NDCG@10", "test years", "created (UTC)")
    colour = {"champion": "green", "failed run": "red", "run deleted": "red"}
    for r in rows:
        ndcg = f"{r['ndcg_at_10']:.4f}" if r["ndcg_at_10"] is not None else "-"
        status = f"[{colour[r['status']]}]{r['status']}[/]" if r["status"] in colour else r["status"]
        table.add_row(r["model"], str(r["version"]), status, ndcg, r["test_years"] or "-", r["created"])
    console.print(table)
    debris = [r for r in rows if r["status"] in {"failed run", "run deleted"}]
    if debris:
        console.print(f"{len(debris)} version(s) come from runs that did not finish (a killed train): they are never "
                      "used as champion; delete them in the MLflow UI (Models) if you like.")
