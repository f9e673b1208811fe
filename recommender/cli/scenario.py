"""``recommender scenario``: a supply shock to one importer and who in the bloc could fill the gap."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from features.registry import format_usd
from recommender.cli._common import BlocOption, JsonOption, config, console, console_err, print_json
from recommender.outputs.files import check_output
from recommender.outputs.scenario import write_scenario


def scenario(
    ctx: typer.Context,
    importer: Annotated[str, typer.Option("--importer", help="The bloc member whose imports are cut (ISO3 or name)")],
    cut: Annotated[str, typer.Option("--cut", help="Suppliers that stop: ISO3 codes, names and/or groups (EU27, G7, a bloc), comma-separated")],
    share: Annotated[float, typer.Option("--share", help="Share of those imports that stops (1.0 = all)", min=0.0, max=1.0)] = 1.0,
    year: Annotated[int | None, typer.Option(help="Trade year (default: the bank's last year)")] = None,
    bloc: BlocOption = None,
    top: Annotated[int | None, typer.Option(help="Keep the N products with the largest gaps")] = None,
    product: Annotated[list[str] | None, typer.Option("--product", help="Only these products: HS code at any level (a chapter stands for its codes), section or name; repeatable")] = None,
    output: Annotated[Path | None, typer.Option(help="Write .csv, .parquet or .xlsx (a workbook: gaps, suppliers and About sheets)")] = None,
    as_json: JsonOption = False,
) -> None:
    """If imports from these suppliers stop (or fall by --share), what gap opens, and who in the bloc can fill it?"""
    from recommender.outputs.scenario import run_scenario

    cfg = config(ctx, bloc)
    if output is not None:
        check_output(output)  # a wrong name fails before the work
    result = run_scenario(cfg, importer, cut, share=share, year=year, top=top, products=product,
                          log=lambda msg: console_err.print(msg, highlight=False))
    t = result.totals
    if output is not None:
        write_scenario(cfg, result, output)
        console_err.print(f"wrote {len(result.table):,} rows to {output}")
    if as_json:
        print_json({"importer": result.importer, "year": result.year, "cut": result.cut, "share": result.share,
                    "model_version": result.model_version, "totals": t, "rows": result.table})
        return
    console.print(f"[bold]{result.importer}[/], {result.year}: imports from {', '.join(result.cut[:12])}"
                  f"{' …' if len(result.cut) > 12 else ''} fall by {result.share:.0%}")
    console.print(f"gap {format_usd(t['gap_usd'])} over {t['products']:,} products; coverable by {cfg.bloc.name} at current "
                  f"export levels {format_usd(t['coverable_usd'])} ({t['coverable_usd'] / t['gap_usd']:.0%}); "
                  f"uncovered {format_usd(t['uncovered_usd'])}" if t["gap_usd"] else "no imports from those suppliers: no gap")
    grid = Table(title=f"Largest gaps and the best bloc suppliers · model {result.model_version or 'none (no champion)'}")
    for name in ("product", "lost", "coverable", "supplier", "could cover", "probability"):
        grid.add_column(name, justify="left" if name in {"product", "supplier"} else "right", max_width=34)
    shown = result.table.groupby("product", sort=False).head(3)
    for product in shown["product"].drop_duplicates().head(15):
        rows = shown[shown["product"] == product]
        for i, (_, row) in enumerate(rows.iterrows()):
            has = isinstance(row["supplier"], str)
            grid.add_row(row["product_name"] if i == 0 else "", format_usd(row["lost_usd"]) if i == 0 else "",
                         format_usd(row["coverable_usd"]) if i == 0 else "",
                         f"{row['supplier_name']} ({row['supplier']})" if has else "no bloc supplier",
                         (f"{row['covers_share']:.0%}" if row["covers_share"] >= 0.005 else "<1%") if has else "", f"{row['probability']:.2f}" if row["probability"] == row["probability"] else "-")
    console.print(grid)
