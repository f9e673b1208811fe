"""Model vs baselines on the real sample (sections, 1995–2014, h = 5) for SCO and ASEAN.

Target (issue 4): test NDCG@10 of the model beats the best baseline by at least 15 % relative on
both tasks (SCO); ASEAN is reported with the same protocol. Needs RECOMMENDER_REAL_DATA.
"""

from __future__ import annotations

import shutil
import warnings

from benchmarks._harness import WORK, record
from recommender.config import Config, real_data_dir


def run() -> dict:
    data = real_data_dir()
    if data is None:
        print("quality: RECOMMENDER_REAL_DATA not set; skipped")
        return {"skipped": True}
    from recommender.bank import DataBank
    from recommender.ingest import ingest_capacity, ingest_geography, ingest_trade
    from recommender.pipeline import train_task

    warnings.filterwarnings("ignore")
    home = WORK / "quality-home"
    shutil.rmtree(home, ignore_errors=True)
    bank = DataBank(home / "bank")
    ingest_trade(bank, data / "trade_sections_1995_2014.parquet", product_column="section_code")
    ingest_capacity(bank, data / "value_added_1995_2014.parquet", columns={"country": "iso3", "value": "value_usd"})
    ingest_capacity(bank, data / "pwt_1995_2014.parquet", columns={"country": "iso3"})
    ingest_geography(bank, data / "distances.parquet")
    results = {}
    for bloc in ("SCO", "ASEAN"):
        cfg = Config(home=home, bloc=Config().bloc).with_bloc(bloc)
        for task in ("import-substitution", "joint-projects"):
            ev = train_task(cfg, task, horizon=5).evaluation
            name, best = ev.best_baseline
            model = ev.overall["model"]["ndcg_at_10"]
            results[f"{bloc}/{task}"] = {
                "test_years": ev.test_years, "model_ndcg_at_10": model, "best_baseline": name, "best_baseline_ndcg_at_10": best,
                "relative_lift": model / best - 1,
                "all": {k: round(v["ndcg_at_10"], 4) for k, v in ev.overall.items()},
                "by_year": {f.test_year: {k: round(v["ndcg_at_10"], 4) for k, v in f.metrics.items()} for f in ev.folds},
            }
            print(f"{bloc:6} {task:20} model {model:.3f} vs {name} {best:.3f} ({100 * (model / best - 1):+.1f}%)", flush=True)
    out = {"data": "shared/data trade_sections_1995_2014 (22 HS sections), value added, PWT, distances", "horizon": 5,
           "results": results, "target": "SCO: model NDCG@10 >= 1.15 x best baseline on both tasks"}
    out["met"] = all(results[f"SCO/{t}"]["relative_lift"] >= 0.15 for t in ("import-substitution", "joint-projects"))
    record("quality", out)
    return out
