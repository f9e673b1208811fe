"""``recommender bank info``: what the data bank holds."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from recommender.bank import DataBank
from recommender.cli._common import config, console

app = typer.Typer(help="Inspect the data bank.", no_args_is_help=True)


def print_info(info: dict, *, brief: bool = False) -> None:
    trade = info["trade"]
    if trade is None:
        console.print(f"The data bank at {info['bank']} is empty. Try `recommender demo`.")
        return
    console.print(f"[bold]Data bank[/] {info['bank']} (snapshot {info['snapshot']})")
    console.print(f"trade: {trade['rows']:,} rows, {len(trade['years'])} years {trade['years'][0]}–{trade['years'][-1]}, "
                  f"{trade['exporters']} exporters, {trade['importers']} importers, {trade['products']} products")
    if not brief:
        table = Table("year", "rows", "value (USD bn)")
        for year, value in trade["value_usd_by_year"].items():
            table.add_row(year, f"{trade['rows_by_year'][year]:,}", f"{value / 1e9:,.1f}")
        console.print(table)
    cap = info["capacity"]
    if cap:
        console.print(f"capacity: {cap['rows']:,} rows, {cap['countries']} countries, indicators: " + ", ".join(
            f"{k} ({v['countries']} countries, {v['first_year']}–{v['last_year']})" for k, v in cap["indicators"].items()))
    if info["geography"]:
        console.print(f"geography: {info['geography']['pairs']:,} country pairs")
    console.print(f"sources: {len(info['sources'])}")
    for src in [] if brief else info["sources"]:
        years = f"{min(src['years'])}–{max(src['years'])}" if src["years"] else ""
        console.print(f"  {src['table']:<10} {src['format']:<9} {src['rows']:>10,} rows {years:<10} {src['path']}")


@app.command("info")
def info(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output (stable, documented in the README)")] = False) -> None:
    """Rows, years, countries, products, value by year, capacity coverage and sources."""
    data = DataBank(config(ctx).bank_dir).info()
    if as_json:
        typer.echo(json.dumps(data, indent=2, sort_keys=True))
    else:
        print_info(data)
