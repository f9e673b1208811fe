"""``recommender ingest trade|capacity|geography``: validate a file and add it to the data bank."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from recommender.bank import DataBank
from recommender.bank import ingest as lib
from recommender.cli._common import SheetOption, choices, config, console, console_err, value

app = typer.Typer(help="Validate files and add them to the data bank (atomically: all or nothing).", no_args_is_help=True)

TradeFormat = choices("TradeFormat", lib.TRADE_FORMATS)
CapacityFormat = choices("CapacityFormat", lib.CAPACITY_FORMATS)
Classification = choices("Classification", ("hs", "hs-section", "other"))
ColumnOption = Annotated[list[str] | None, typer.Option("--column", help="Map a canonical column to yours: CANONICAL=SOURCE (repeatable), e.g. --column country=iso3")]
ReplaceOption = Annotated[bool, typer.Option("--replace", help="Replace the overlapping years of sources already in the bank")]


def _report(result: lib.IngestResult) -> None:
    src = result.source
    if result.unchanged:
        if not result.notes or src.get("id") != "-":
            console.print(f"[yellow]unchanged[/]: {src['path']} is already in the bank (sha256 {src['sha256'][:12]}); nothing to do.")
        for note in result.notes:
            console.print(note)
        return
    years = f"{min(src['years'])}–{max(src['years'])}" if src["years"] else "-"
    console.print(f"[green]ingested[/] {src['table']}: {src['rows']:,} rows, years {years}, source id {src['id']}")
    for reason, n in result.dropped.items():
        if n:
            console.print(f"  dropped {n:,} row(s): {reason}")
    if result.replaced:
        console.print(f"  replaced overlapping data from: {', '.join(result.replaced)}")
    for note in result.notes:
        console.print(note)


@app.command("trade")
def trade(
    ctx: typer.Context,
    paths: Annotated[list[str], typer.Argument(help="Files, folders, globs ('BACI_HS17_Y*.csv') or zips of CSVs: ingested together as one transaction")],
    format: Annotated[TradeFormat | None, typer.Option("--format", help="Source layout (default: baci for files named as in a BACI release, else long)")] = None,
    column: ColumnOption = None,
    product_column: Annotated[str | None, typer.Option("--product-column", help="Column holding product codes (e.g. section_code)")] = None,
    country_codes: Annotated[Path | None, typer.Option("--country-codes", help="BACI country_codes CSV (numeric → ISO3); default the release's own (country_codes_V*.csv beside the yearly files), else ISO 3166 numeric")] = None,
    classification: Annotated[Classification | None, typer.Option("--classification", help="Product classification (default hs)")] = None,
    replace: ReplaceOption = False,
    sheet: SheetOption = None,
) -> None:
    """Ingest bilateral trade: BACI (t,i,j,k,v,q), UN Comtrade exports, or a tidy long table; all files or none."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    bank = DataBank(config(ctx).bank_dir)
    columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rows]:,} rows"), TimeElapsedColumn()]
    with Progress(*columns, console=console_err, transient=True) as bar:
        task = bar.add_task("reading", total=None, rows=0)

        def on_file(i: int, n: int, name: str) -> None:
            bar.update(task, total=n, completed=i, description=f"reading {name}")

        results = lib.ingest_trade_files(
            bank, paths, format=value(format), columns=lib.parse_column_map(column), product_column=product_column,
            country_codes=country_codes, classification=value(classification), replace=replace, on_file=on_file, sheet=sheet,
            progress=lambda rows: bar.update(task, rows=bar.tasks[0].fields["rows"] + rows))
    for result in results:
        _report(result)
    if len(results) > 1:
        new = [r for r in results if not r.unchanged]
        console.print(f"{len(results)} file(s): {len(new)} ingested ({sum(r.source['rows'] for r in new):,} rows) in one "
                      f"transaction, {len(results) - len(new)} unchanged")


@app.command("capacity")
def capacity(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="CSV, Parquet or workbook (.xlsx/.xls/.ods)", exists=True, dir_okay=False)],
    format: Annotated[CapacityFormat, typer.Option("--format", help="long (long or wide tables) or indstat")] = "long",
    column: ColumnOption = None,
    replace: ReplaceOption = False,
    sheet: SheetOption = None,
) -> None:
    """Ingest production capacity: value added by sector, Penn World Table, UNIDO INDSTAT."""
    bank = DataBank(config(ctx).bank_dir)
    _report(lib.ingest_capacity(bank, path, format=value(format), columns=lib.parse_column_map(column), replace=replace,
                                sheet=sheet))


@app.command("geography")
def geography(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="CSV, Parquet or workbook (.xlsx/.xls/.ods)", exists=True, dir_okay=False)],
    column: ColumnOption = None,
    replace: ReplaceOption = False,
    sheet: SheetOption = None,
) -> None:
    """Ingest country-pair geography (CEPII GeoDist layout: iso3_a, iso3_b, dist_km, contig, comlang_off)."""
    bank = DataBank(config(ctx).bank_dir)
    _report(lib.ingest_geography(bank, path, columns=lib.parse_column_map(column), replace=replace, sheet=sheet))


@app.command("products")
def products(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="CSV, Parquet or workbook (.xlsx/.xls/.ods)", exists=True, dir_okay=False)],
    column: ColumnOption = None,
    replace: ReplaceOption = False,
    sheet: SheetOption = None,
) -> None:
    """Ingest product names (code → name at HS2, HS4, HS6 or section level) for every human-facing output."""
    bank = DataBank(config(ctx).bank_dir)
    _report(lib.ingest_product_names(bank, path, columns=lib.parse_column_map(column), replace=replace, sheet=sheet))
