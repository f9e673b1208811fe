"""``recommender bank info`` (what the data bank holds) and ``bank push`` (publish it to object storage)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from recommender.bank import DataBank, summary
from recommender.cli._common import config, console

app = typer.Typer(help="Inspect the data bank, or publish it to object storage.", no_args_is_help=True)


def print_info(info: dict, *, brief: bool = False) -> None:
    trade = info["trade"]
    if trade is None:
        hint = f"publish one there with `recommender bank push {info['bank']}`" if "://" in info["bank"] else "Try `recommender demo`"
        console.print(f"The data bank at {info['bank']} is empty. {hint}.")
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
    data = summary(DataBank(config(ctx).bank_dir))
    if as_json:
        typer.echo(json.dumps(data, indent=2, sort_keys=True))
    else:
        print_info(data)


@app.command("push")
def push(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(help="Where to publish: an fsspec URL such as s3://bucket/sco-bank")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Publish the bank's live snapshot to object storage, for a Dask cluster with no shared filesystem.

    Files go first, then the pointer: readers see the old snapshot or the new one, never a part.
    Files unchanged since the last push are copied inside the store, not uploaded again.
    """
    from recommender.bank.push import push as push_bank
    from recommender.cli._common import progress

    bank = DataBank(config(ctx).bank_dir)
    with progress(f"pushing to {url} (bytes)", total=None) as advance:
        result = push_bank(bank, url, progress=advance)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2, sort_keys=True))
    elif result.unchanged:
        console.print(f"{url} already holds snapshot {result.snapshot}: nothing to push")
    else:
        console.print(f"pushed snapshot {result.snapshot} to {url}: {result.uploaded_files} file(s) uploaded "
                      f"({result.uploaded_bytes / 1e6:,.1f} MB), {result.copied_files} copied in the store"
                      + (f", {len(result.removed_snapshots)} old snapshot(s) removed" if result.removed_snapshots else ""))
        console.print(f"read it with --bank {url} (or RECOMMENDER_BANK={url}), e.g. on a cluster: "
                      f"recommender --bank {url} train --engine dask --scheduler tcp://HOST:8786")
