"""The bank's stable summary: snapshot, trade by year, capacity coverage, geography and products."""

from __future__ import annotations

from typing import Any

from recommender.bank.databank import DataBank


def summary(bank: DataBank) -> dict[str, Any]:
    """Stable summary of the bank (the JSON of ``recommender bank info --json``)."""
    snapshot = bank.snapshot_id
    out: dict[str, Any] = {"bank": str(bank.root), "snapshot": snapshot,
                           "manifest_hash": bank.manifest_hash() if snapshot else None}
    if bank.has("trade"):
        with bank.query() as con:  # one streaming pass: the trade table is never held in memory
            files = {"f": bank.local_files("trade")}
            by_year = con.execute("SELECT CAST(year AS INTEGER), sum(value_usd), count(*) FROM read_parquet($f) "
                                  "GROUP BY 1 ORDER BY 1", files).fetchall()
            exporters, importers, products = con.execute(
                "SELECT count(DISTINCT exporter), count(DISTINCT importer), count(DISTINCT product) FROM read_parquet($f)",
                files).fetchone()
        out["trade"] = {
            "rows": sum(int(n) for _, _, n in by_year),
            "years": [int(y) for y, _, _ in by_year],
            "exporters": int(exporters),
            "importers": int(importers),
            "products": int(products),
            "value_usd_by_year": {str(int(y)): float(v) for y, v, _ in by_year},
            "rows_by_year": {str(int(y)): int(n) for y, _, n in by_year},
        }
    else:
        out["trade"] = None
    if bank.has("capacity"):
        c = bank.read("capacity")
        cov = c.groupby("indicator").agg(countries=("country", "nunique"), first_year=("year", "min"),
                                         last_year=("year", "max"), rows=("value", "size"))
        out["capacity"] = {
            "rows": len(c),
            "countries": int(c["country"].nunique()),
            "years": sorted(int(y) for y in c["year"].unique()),
            "indicators": {k: {kk: int(vv) for kk, vv in v.items()} for k, v in cov.to_dict("index").items()},
        }
    else:
        out["capacity"] = None
    out["geography"] = {"pairs": bank.dataset("geography").count_rows()} if bank.has("geography") else None
    out["products"] = {"rows": bank.dataset("products").count_rows()} if bank.has("products") else None
    out["sources"] = bank.sources
    return out
