"""Ingest of a 10-million-row BACI CSV vs the obvious pandas.read_csv + to_parquet path and vs the Arrow floor.

Targets: issue 2, at least 3× faster than pandas, peak memory no larger; issue 30, at least 80 % of
the raw Arrow limit, the time of ``pyarrow.csv.read_csv`` + ``pyarrow.parquet.write_table`` of the
same file (no validation, no codes, no partitioning, no fsync: what any ingest must at least pay).
Each side is the median of 3 fresh processes.
"""

from __future__ import annotations

import shutil

from benchmarks._harness import WORK, measure, record

ROWS = 10_000_000


def make_input(rows: int = ROWS):
    """A BACI-format CSV of exactly ``rows`` rows from the BACI-scale synthetic world (cached)."""
    path = WORK / f"baci_{rows}.csv"
    if path.exists():
        return path
    from recommender.bank.synthetic import WorldSpec, generate_world, write_baci

    WORK.mkdir(parents=True, exist_ok=True)
    years = write_baci(generate_world(WorldSpec.baci(n_years=4)), WORK / "baci_years", max_rows=rows)
    with open(path, "w") as out:
        written = 0
        for n, part in enumerate(years.values()):
            with open(part) as f:
                header = f.readline()
                if n == 0:
                    out.write(header)
                for line in f:
                    if written >= rows:
                        break
                    out.write(line)
                    written += 1
    shutil.rmtree(WORK / "baci_years")
    return path


def run() -> dict:
    path = make_input()
    out = WORK / "ingest_out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    baseline = measure(
        f"""
        df = pd.read_csv({str(path)!r}, dtype={{"k": str}})
        df.to_parquet({str(out / 'pandas.parquet')!r}, index=False)
        extra = {{"rows": len(df)}}
        """,
        setup="import pandas as pd",
    )
    arrow = measure(
        f"""
        table = pacsv.read_csv({str(path)!r}, convert_options=pacsv.ConvertOptions(column_types={{"k": pa.string()}}))
        pq.write_table(table, {str(out / 'arrow.parquet')!r})
        extra = {{"rows": table.num_rows}}
        """,
        setup="import pyarrow as pa\nimport pyarrow.csv as pacsv\nimport pyarrow.parquet as pq", repeat=3,
    )
    ours = measure(
        repeat=3, body=f"""
        result = ingest_trade(DataBank({str(out / 'bank')!r}), {str(path)!r}, format="baci")
        extra = {{"rows": result.source["rows"]}}
        """,
        setup=f"import shutil\nshutil.rmtree({str(out / 'bank')!r}, ignore_errors=True)\n"
              "from recommender.bank import DataBank\nfrom recommender.bank.ingest import ingest_trade",
    )
    for r in (baseline, arrow, ours):
        r["rows_per_second"] = r["extra"]["rows"] / r["seconds"]
    result = {
        "input_rows": ROWS,
        "pandas_read_csv_to_parquet": baseline,
        "recommender_ingest_baci": ours,
        "arrow_read_csv_write_table": arrow,
        "speedup": baseline["seconds"] / ours["seconds"],
        "memory_ratio": ours["peak_rss_mb"] / baseline["peak_rss_mb"],
        "share_of_arrow_limit": arrow["seconds"] / ours["seconds"],
        "target": "speedup >= 3 and memory_ratio <= 1 (issue 2); share_of_arrow_limit >= 0.8 (issue 30)",
    }
    result["met"] = result["speedup"] >= 3 and result["memory_ratio"] <= 1 and result["share_of_arrow_limit"] >= 0.8
    record("ingest", result)
    shutil.rmtree(out, ignore_errors=True)
    return result
