"""``recommender score``: score a spreadsheet of proposed projects with the champion model."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from recommender.cli._common import (
    BlocOption,
    EngineName,
    EngineOption,
    SchedulerOption,
    SheetOption,
    TaskOption,
    config,
    console,
    console_err,
    engine,
    progress,
    task_name,
)
from recommender.service import SERVICE_ENV


def score(
    ctx: typer.Context,
    projects: Annotated[Path, typer.Argument(help="CSV, Parquet or workbook (.xlsx/.xls/.ods): importer, supplier, product "
                                              "(import-substitution), partner_a, partner_b, product (joint-projects) or country, product "
                                              "(diversification); countries as ISO3 codes or names, products as HS codes at any level, "
                                              "sections or names; other columns pass through")],
    task: TaskOption,
    bloc: BlocOption = None,
    year: Annotated[int | None, typer.Option(help="Year whose data the features use (default: the bank's last)")] = None,
    model_uri: Annotated[str | None, typer.Option("--model-uri", help="MLflow model URI (default: the champion of the task and bloc)")] = None,
    output: Annotated[Path | None, typer.Option(help="Output .csv, .parquet or .xlsx (default: <input>.scored.csv)")] = None,
    sheet: SheetOption = None,
    no_reasons: Annotated[bool, typer.Option("--no-reasons", help="Skip the reasons column (faster)")] = False,
    engine_name: EngineOption = EngineName.local,
    scheduler: SchedulerOption = None,
    service: Annotated[str | None, typer.Option("--service", envvar=SERVICE_ENV, help="URL of a `recommender scoring-service` "
                                                "(it holds the champion and the year's candidates in memory: seconds, not a cold "
                                                "start); its bank and tracking server score the list")] = None,
) -> None:
    """Validate and score a list of candidate projects: score, rank, percentile, reasons, model version."""
    task = task_name(task)
    output = output or projects.with_name(projects.stem + ".scored.csv")
    if service:
        if engine_name != EngineName.local or model_uri:
            raise typer.BadParameter("--service scores with the service's champion on its own machine; drop --engine / --model-uri")
        _score_on_service(service, projects, output, task, bloc, year, sheet, not no_reasons)
        return
    from recommender.outputs.batch import score_file

    cfg = config(ctx, bloc)
    total = None
    if projects.suffix.lower() == ".csv" and projects.is_file() and os.path.getsize(projects) < 2 * 1024**3:
        with open(projects, "rb") as f:
            total = max(sum(1 for _ in f) - 1, 0)
    with engine(engine_name, scheduler) as runner, progress(f"scoring {projects.name}", total=total) as advance:
        result = score_file(cfg, task, projects, output, year=year, model_uri=model_uri, reasons=not no_reasons,
                            progress=advance, engine=runner, sheet=sheet)
    _report(result, task)


def _report(result, task: str, where: str = "") -> None:
    """What a scoring printed: its warnings, the file written (``where``: on which service), the MLflow run."""
    for warning in result.warnings:
        console_err.print(f"[yellow]warning:[/] {warning}")
    console.print(f"scored {result.rows:,} projects with {result.model_version} (features of {result.year}) → {result.output}"
                  + where, highlight=False)
    if result.run_id:
        console.print(f"recorded in MLflow as run {result.run_id} (experiment {task}-scoring)")


def _score_on_service(url: str, projects: Path, output: Path, task: str, bloc: str | None, year: int | None,
                      sheet: str | None, reasons: bool) -> None:
    from recommender.service.client import score_remote

    with progress(f"scoring {projects.name} on {url}"):
        result = score_remote(url, projects, output, task=task, bloc=bloc, year=year, reasons=reasons, sheet=sheet)
    _report(result, task, f" on {url} in {result.seconds:.1f} s")
