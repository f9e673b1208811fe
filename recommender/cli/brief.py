"""``recommender brief``: a self-contained HTML brief on one country, for the people who decide."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from recommender.cli._common import BlocOption, config, console, stages


def brief(
    ctx: typer.Context,
    country: Annotated[str, typer.Option("--country", help="The bloc member the brief is about (ISO3 or name)")],
    output: Annotated[Path, typer.Option("--output", help="The HTML file to write")] = Path("brief.html"),
    year: Annotated[int | None, typer.Option(help="Trade year (default: the bank's last year)")] = None,
    bloc: BlocOption = None,
    top: Annotated[int, typer.Option(help="Products and projects per table", min=1)] = 8,
    scenario_cut: Annotated[str | None, typer.Option("--scenario-cut", help="Add a supply-shock section: suppliers that stop (ISO3 codes, EU27, G7, a bloc)")] = None,
) -> None:
    """Write a country brief: import substitution, joint projects, charts, model quality (and a scenario)."""
    from recommender.outputs.brief import write_brief

    cfg = config(ctx, bloc)
    with stages(f"brief on {country}") as log:
        result = write_brief(cfg, country, output, year=year, top=top, scenario_cut=scenario_cut, log=log)
    console.print(f"wrote the brief on {result.country} ({result.year}) to {output}: sections {', '.join(result.sections)}; "
                  f"charts {', '.join(result.charts) or 'none'}; logged to MLflow (experiment 'brief')")
