"""Shared CLI plumbing: the root options, the configuration in the Typer context, progress."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from models.names import TASK_NAMES
from recommender.config import Config

# off a terminal (a log, CI, a pipe) tables print at full width: never cut to 80 columns with "…"
console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 400)
console_err = Console(stderr=True, soft_wrap=True, width=None if sys.stderr.isatty() else 400)


def root_callback(
    ctx: typer.Context,
    home: Annotated[Path | None, typer.Option("--home", help="Home folder (data bank, MLflow store). Env: RECOMMENDER_HOME; default ./.recommender")] = None,
    tracking_uri: Annotated[str | None, typer.Option("--tracking-uri", help="MLflow tracking URI. Env: MLFLOW_TRACKING_URI; default a SQLite file under the home")] = None,
    bank: Annotated[str | None, typer.Option("--bank", help="Data bank: a folder, or the URL of a bank published with `bank push` (s3://bucket/bank, read-only). Env: RECOMMENDER_BANK; default HOME/bank")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", help="Show the libraries' own logging (MLflow, LightGBM)")] = False,
) -> None:
    """Industrial-cooperation recommender: import substitution and joint projects for trade blocs."""
    from models.store import quiet_mlflow

    quiet_mlflow(verbose)
    ctx.obj = Config.from_env(home=home, tracking_uri=tracking_uri, bank=bank)


def config(ctx: typer.Context, bloc: str | None = None) -> Config:
    cfg = ctx.find_root().obj
    if cfg is None:  # invoked without the root callback (e.g. from tests)
        cfg = Config.from_env()
    return cfg.with_bloc(bloc)


@contextmanager
def stages(title: str) -> Iterator[callable]:
    """The stages of a long command: on a terminal a spinner naming the current stage; in a log (stderr not a
    terminal) one quiet line per stage with the time so far. Yields ``log(stage)``."""
    import time

    start = time.monotonic()
    if console_err.is_terminal:
        with console_err.status(f"{title}…") as status:
            yield lambda msg: status.update(f"{title}: {msg}")
    else:
        yield lambda msg: console_err.print(f"{title}: {msg} ({time.monotonic() - start:.0f} s)", highlight=False)


@contextmanager
def progress(description: str, total: float | None = None) -> Iterator[callable]:
    """A progress bar (or spinner when ``total`` is unknown); yields ``advance(n)``."""
    columns = [SpinnerColumn(), TextColumn("[progress.description]{task.description}")]
    if total is not None:
        columns.append(BarColumn())
    columns += [TextColumn("{task.completed:,.0f}" + (f" / {total:,.0f}" if total else "")), TimeElapsedColumn()]
    with Progress(*columns, console=console_err, transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n=1: bar.advance(task, n)


SheetOption = Annotated[str | None, typer.Option(
    "--sheet", help="Sheet of an .xlsx/.xls/.ods input (default: its only sheet with data; several → name one)")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the table as JSON records (for scripts)")]

def print_json(payload) -> None:
    """``payload`` as JSON on stdout, nothing else (DataFrames become lists of records, NaN null)."""
    import json

    import pandas as pd

    def plain(value):
        if isinstance(value, pd.DataFrame):
            return json.loads(value.to_json(orient="records", date_format="iso"))
        if isinstance(value, dict):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        if isinstance(value, float) and value != value:
            return None
        return value

    sys.stdout.write(json.dumps(plain(payload), indent=1, default=str) + "\n")


BlocOption = Annotated[str | None, typer.Option("--bloc", help="SCO (default), EAEU, ASEAN, BRICS or a comma-separated ISO3 list")]

EngineName = Enum("EngineName", {"local": "local", "dask": "dask"}, type=str)
EngineOption = Annotated[EngineName, typer.Option("--engine", help="Where features and models are computed: this process, or a Dask cluster")]
SchedulerOption = Annotated[str | None, typer.Option(
    "--scheduler", help="Dask scheduler tcp://HOST:PORT for --engine dask (default: a local cluster of 2 workers). Env: RECOMMENDER_SCHEDULER",
    envvar="RECOMMENDER_SCHEDULER")]


def engine(name: EngineName | str, scheduler: str | None):
    """The engine for a command (:func:`models.engine.open_engine`), its start reported on stderr."""
    from models.engine import open_engine

    return open_engine(value(name), scheduler=scheduler, log=lambda msg: console_err.print(msg))


TaskName = Enum("TaskName", {name.replace("-", "_"): name for name in TASK_NAMES}, type=str)
"""The tasks as a real choice: Typer lists them in --help and refuses anything else with exit 2."""
TaskOption = Annotated[TaskName, typer.Option("--task", help="The ranking task")]


def choices(name: str, values: tuple[str, ...] | list[str]) -> type[Enum]:
    """A ``str`` Enum of ``values``: Typer then lists them in ``--help`` and refuses anything else (exit 2)."""
    return Enum(name, {v.replace("-", "_"): v for v in values}, type=str)


def task_name(task: TaskName | str) -> str:
    return task.value if isinstance(task, Enum) else task


def value(choice: Enum | str | None) -> str | None:
    """The plain string of a choice (Typer passes the Enum member)."""
    return choice.value if isinstance(choice, Enum) else choice
