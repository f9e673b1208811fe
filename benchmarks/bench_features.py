"""Feature tables for one year of an HS6-scale bloc: SCO (10 members) in a world of 200 countries
× 5,000 six-digit products, including the 3- and 5-year lags. Target (issue 3): under a minute.
"""

from __future__ import annotations

from benchmarks._harness import measure, record


def run() -> dict:
    setup = """
import pandas as pd
from recommender.bank.synthetic import WorldSpec, generate_world
from features.assemble import build_base
from models import tasks
world = generate_world(WorldSpec.baci(n_years=6))
trade = pd.concat(list(world.trade_by_year()), ignore_index=True)
year = int(trade["year"].max())
bloc = list(world.countries["iso3"][:10])
"""
    body = """
base = build_base(trade, bloc, years=[year])
sizes = {}
for task in tasks.TASKS.values():
    table = task.features(base, task.candidates(base, [year]))
    sizes[task.name] = table.shape
extra = {"trade_rows": len(trade), "candidates": {k: list(v) for k, v in sizes.items()}}
"""
    r = measure(body, setup=setup)
    out = {"world": "200 countries x 5,000 HS6 products, 6 years (t-5..t)", "bloc": "SCO (10 members)", **r,
           "target": "seconds < 60", "met": r["seconds"] < 60}
    record("features", out)
    return out
