"""``recommender recommend``: rank every candidate of a year with the champion model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from models.tasks import get_task
from recommender.cli._common import (
    BlocOption,
    EngineName,
    EngineOption,
    JsonOption,
    SchedulerOption,
    TaskOption,
    config,
    console,
    console_err,
    engine,
    print_json,
    stages,
    task_name,
)
from recommender.outputs.about import about_rows
from recommender.outputs.files import check_output
from recommender.outputs.writers import write_table
from recommender.pipeline import open_bank


def recommend(
    ctx: typer.Context,
    task: TaskOption,
    bloc: BlocOption = None,
    year: Annotated[int | None, typer.Option(help="Candidate year (default: the bank's last year)")] = None,
    country: Annotated[list[str] | None, typer.Option("--country", help="Importer (import substitution), partner (joint projects) or country (diversification): ISO3 or name; repeatable")] = None,
    product: Annotated[list[str] | None, typer.Option("--product", help="Only these products: HS code at any level, section or name; repeatable")] = None,
    top: Annotated[int | None, typer.Option(help="Keep the best N of each query group (default: all)")] = None,
    output: Annotated[Path | None, typer.Option(help="Write every row to .csv, .parquet or .xlsx (by extension)")] = None,
    as_json: JsonOption = False,
    model_uri: Annotated[str | None, typer.Option("--model-uri", help="Score with this MLflow model instead of the champion")] = None,
    engine_name: EngineOption = EngineName.local,
    scheduler: SchedulerOption = None,
) -> None:
    """Rank candidates with the champion model: a readable table, or every candidate to --output."""
    from recommender.outputs.recommend import recommend as run

    cfg, task = config(ctx, bloc), task_name(task)
    if output is not None:
        check_output(output)  # a wrong name fails before the work
    with engine(engine_name, scheduler) as runner, stages(f"recommend {task}") as log:
        table, version = run(cfg, task, year=year, countries=country, products=product, top=top, model_uri=model_uri,
                             engine=runner, log=log)
    year_label = int(table["year"].iloc[0]) if len(table) else year
    if output is not None:
        about = about_rows(cfg, open_bank(cfg), model_versions=[version], year=year_label, extra=[("task", task)])
        write_table(table, output, sheet=task, about=about)
        (console_err if as_json else console).print(f"wrote {len(table):,} rows to {output} (model {version})")
    shown = table if top is not None else table[table["rank"] <= 5]
    if as_json:
        print_json({"task": task, "bloc": cfg.bloc.name, "year": year_label, "model_version": version, "rows": shown})
        return
    print_recommendations(shown, task, f"{task} · {cfg.bloc.name} · {year_label} · model {version}")


def print_recommendations(table, task: str, title: str, limit: int = 60) -> None:
    """A readable table: names, rank, score and the reasons."""
    grid = Table(title=title)
    roles = get_task(task).roles
    cols = [(f"{roles[0]}_name", roles[0].replace("_", " ")), ("rank", "#"), (f"{roles[1]}_name", roles[1].replace("_", " ")),
            ("product_name", "product")]
    for _, label in cols:
        grid.add_column(label, max_width=28)
    grid.add_column("score", justify="right", no_wrap=True)
    grid.add_column("why (strongest feature contributions)", ratio=3, min_width=30)
    for _, row in table.head(limit).iterrows():
        cells = [(f"{row[c]} ({row[c[:-5]]})" if row[c[:-5]] else "—") if c[:-5] in roles else str(row[c])
                 for c, _ in cols]  # names, codes beside
        grid.add_row(*cells, f"{row['score']:.3f}", row["reasons"])
    console.print(grid)
    if len(table) > limit:
        console.print(f"... {len(table) - limit:,} more rows; use --output to write them all")
