"""Batch scoring of 1,000,000 project rows, with and without reasons.

Target (issue 5): at least 100,000 rows/s without reasons. Uses the demo-size synthetic world
with a quickly trained champion; the projects are drawn from the bank's bloc × product keys.
"""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd

from benchmarks._harness import WORK, measure, record

ROWS = 1_000_000


def prepare():
    from recommender.bank import DataBank
    from recommender.config import Config
    from recommender.demo import build_demo_bank
    from recommender.pipeline import train_task
    from recommender.synthetic import WorldSpec

    home = WORK / "scoring-home"
    projects = WORK / f"projects_{ROWS}.csv"
    if not (home / "mlflow.db").exists():
        shutil.rmtree(home, ignore_errors=True)
        cfg = Config(home=home)
        list(build_demo_bank(cfg, spec=WorldSpec.demo(seed=0)))
        train_task(cfg, "import-substitution", overrides={"n_estimators": "150"})
    if not projects.exists():
        bank = DataBank(home / "bank")
        products = bank.read("products")["product"].to_numpy()
        members = np.array(Config().bloc.members)
        rng = np.random.default_rng(0)
        imp = rng.integers(0, len(members), ROWS)
        sup = (imp + rng.integers(1, len(members), ROWS)) % len(members)
        pd.DataFrame({"project_id": [f"P{i:07d}" for i in range(ROWS)], "importer": members[imp], "supplier": members[sup],
                      "product": products[rng.integers(0, len(products), ROWS)],
                      "capex_musd": rng.lognormal(3, 1, ROWS).round(1)}).to_csv(projects, index=False)
    return home, projects


def run() -> dict:
    home, projects = prepare()
    setup = (f"from recommender.config import Config\nfrom recommender.scoring import score_file\n"
             f"cfg = Config(home=__import__('pathlib').Path({str(home)!r}))")
    results = {}
    for label, reasons in (("without_reasons", False), ("with_reasons", True)):
        r = measure(f"res = score_file(cfg, 'import-substitution', {str(projects)!r}, {str(WORK / 'scored.csv')!r}, "
                    f"reasons={reasons}, track=False)\nextra = {{'rows': res.rows}}", setup=setup)
        r["rows_per_second"] = r["extra"]["rows"] / r["seconds"]
        results[label] = r
    out = {"rows": ROWS, **results, "target": "without_reasons rows_per_second >= 100000",
           "note": "library call score_file(track=False): validation, per-key features and scores, rank, percentile, CSV output"}
    out["met"] = results["without_reasons"]["rows_per_second"] >= 100_000
    record("scoring", out)
    return out
