"""Joint projects with capability signals (issue 27 §3), judged on development years only.

Joint projects rank a pair's products by the growth of their matched two-way trade, and today's
two-way share predicts that almost as well as the model (SCO pooled 2008–09: 0.680 vs 0.680). This
experiment adds the capability view and asks whether it helps, on the development test years
1996–2002 (outcomes 2001–2007, before every reported test window), with the reported protocol's
pooled set-up (the bloc's candidates plus 4 pseudo-blocs', h = 5, 22 HS sections, 1962–2014):

* ``partner_a_div_probability``, ``partner_b_div_probability``: each partner's probability of
  reaching RCA ≥ 1 in the product within h years, from a diversification model (every country's
  candidates, :class:`models.tasks.Diversification`) fitted **for each year t on the outcomes
  known at t only** (candidate years ≤ t − h), so the feature of year t reads data ≤ t; missing
  when the partner is not a diversification candidate in p (it already exports p, RCA ≥ 0.5 in
  one of t − 2 … t);
* ``weaker_div_probability``: the one of the partner with the lower RCA in p (the partner that
  would build the capacity);
* ``rca_gap``: ln(1 + RCA_strong) − ln(1 + RCA_weak), the weaker partner's headroom;
* ``bloc_ext_imports``: the country set's imports of p from outside it (the market a joint
  capacity would serve), Σ_{j∈S} M_jp − Σ_{i,j∈S} X_{i→j,p}.

The model with and without them is compared on NDCG@10 over the development folds (and the lift's
bootstrap interval over queries), for SCO and ASEAN. Adopted into the task only if it wins here.
Needs RECOMMENDER_REAL_DATA; ``python -m benchmarks.run capability``.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd

from benchmarks._harness import WORK, record
from recommender.config import Config, real_data_dir

DEV_YEARS = list(range(1996, 2003))
HORIZON = 5
POOL_SETS = 4
CAPABILITY = ["partner_a_div_probability", "partner_b_div_probability", "weaker_div_probability", "rca_gap", "bloc_ext_imports"]


def yearly_probabilities(table: pd.DataFrame, spec, params: dict, years: list[int], *, rounds: int, seed: int = 0,
                         log=print) -> pd.DataFrame:
    """``year, country, product, div_probability`` for every diversification candidate of ``years``:
    year t scored by a model fitted on every country's candidates of years ≤ t − h (outcomes ≤ t)."""
    from models.ranker import fit_ranker

    features = spec.feature_columns(table)
    labelled = table[table["relevance"].notna()]
    out = []
    for t in years:
        train = labelled[labelled["year"] + spec.horizon <= t]
        target = table[table["year"] == t]
        if train["year"].nunique() < 3 or not train["relevance"].any() or target.empty:
            continue
        model = fit_ranker(train, None, features, spec, params, seed=seed, n_estimators=rounds)
        out.append(target[["year", "country", "product"]].assign(div_probability=model.predict(target[features])))
        log(f"  diversification model for {t}: {len(train):,} candidates of {train['year'].min()}–{train['year'].max()}")
    return pd.concat(out, ignore_index=True)


def set_market(bank, members: tuple[str, ...], level: int) -> pd.DataFrame:
    """``year, product, bloc_ext_imports`` of the country set ``members``."""
    view = bank.trade_view(members, product_level=level)
    imports = view.imports[view.imports["importer"].isin(members)].groupby(["year", "product"], observed=True)["imports"].sum()
    flows = view.flows
    inside = flows[flows["exporter"].isin(members) & flows["importer"].isin(members)]
    internal = inside.groupby(["year", "product"], observed=True)["value_usd"].sum()
    market = imports.sub(internal, fill_value=0.0).clip(lower=0.0)
    return market.rename("bloc_ext_imports").reset_index()


def with_capability(table: pd.DataFrame, probabilities: pd.DataFrame, market: pd.DataFrame) -> pd.DataFrame:
    """``table`` (joint-project candidates of one country set) with the :data:`CAPABILITY` columns."""
    out = table
    for role in ("partner_a", "partner_b"):
        p = probabilities.rename(columns={"country": role, "div_probability": f"{role}_div_probability"})
        out = out.merge(p, on=["year", role, "product"], how="left")
    rca_a, rca_b = out["partner_a_rca"].fillna(0.0), out["partner_b_rca"].fillna(0.0)
    out["weaker_div_probability"] = np.where(rca_a <= rca_b, out["partner_a_div_probability"], out["partner_b_div_probability"])
    out["rca_gap"] = np.log1p(np.maximum(rca_a, rca_b)) - np.log1p(np.minimum(rca_a, rca_b))
    out = out.merge(market, on=["year", "product"], how="left")
    out["bloc_ext_imports"] = out["bloc_ext_imports"].fillna(0.0)
    assert len(out) == len(table)
    return out


def run() -> dict:
    data = real_data_dir()
    if data is None:
        print("capability: RECOMMENDER_REAL_DATA not set; skipped")
        return {"skipped": True}
    from benchmarks.bench_quality import _bank
    from models.evaluation import evaluate
    from models.pooling import pseudo_blocs
    from models.ranker import load_params
    from models.tasks import BLOC_POOL, POOL, get_task
    from recommender.pipeline.datasets import FeatureCache, task_table
    from recommender.pipeline.inputs import resolve_level
    from recommender.pipeline.training import pooled_candidates

    warnings.filterwarnings("ignore")
    home = WORK / "capability"
    bank = _bank(home, data, since=1962)
    level = resolve_level(bank, None)
    results: dict = {}
    for bloc in ("SCO", "ASEAN"):
        start = time.perf_counter()
        cfg = Config(home=home).with_bloc(bloc)
        members = tuple(cfg.bloc.members)
        cache = FeatureCache(cfg.feature_dir)
        jp = get_task("joint-projects").with_options(horizon=HORIZON)
        div = get_task("diversification").with_options(horizon=HORIZON)
        dataset = task_table(bank, cache, jp, members, product_level=level, log=print).table
        pool = pooled_candidates(bank, jp, members, level, POOL_SETS, 0, print)
        world = task_table(bank, cache, div, members, product_level=level, log=print).table
        years = sorted(set(dataset["year"]) | set(pool["year"]))
        probabilities = yearly_probabilities(world, div, load_params("diversification"), years, rounds=150)
        sets = pseudo_blocs(bank.trade_view(members, product_level=level), members, n_sets=POOL_SETS, seed=0)
        capable = with_capability(dataset, probabilities, set_market(bank, members, level))
        capable_pool = pd.concat([with_capability(pool[pool[POOL] == f"set{i:03d}"], probabilities, set_market(bank, s, level))
                                  for i, s in enumerate(sets)], ignore_index=True)
        assert len(capable_pool) == len(pool) and BLOC_POOL not in set(capable_pool[POOL])
        params = load_params("joint-projects")
        cell = {}
        for name, (table, extra) in {"today": (dataset, pool), "capability": (capable, capable_pool)}.items():
            ev = evaluate(table, jp, params, test_years=DEV_YEARS, pool=extra, seeds=3, ablation=False, n_resamples=1000)
            best, value = ev.best_baseline
            m = ev.extra["metrics"]
            cell[name] = {"model_ndcg_at_10": round(ev.overall["model"]["ndcg_at_10"], 4), "best_baseline": best,
                          "best_baseline_ndcg_at_10": round(value, 4), "lift": round(m["lift_vs_best_baseline"], 4),
                          "lift_ci95": [round(m["lift_ci_low"], 4), round(m["lift_ci_high"], 4)],
                          "seeds_ndcg_at_10": {str(k): round(v, 4) for k, v in ev.extra["seeds"].items()},
                          "by_year": {f.test_year: round(f.metrics["model"]["ndcg_at_10"], 4) for f in ev.folds},
                          "queries": int(m["n_test_queries"])}
            print(f"{bloc} joint projects, dev {DEV_YEARS[0]}–{DEV_YEARS[-1]}, {name}: model "
                  f"{cell[name]['model_ndcg_at_10']:.4f} vs {best} {value:.4f} ({100 * m['lift_vs_best_baseline']:+.1f}%)", flush=True)
        seeds = {k: np.mean(list(v["seeds_ndcg_at_10"].values())) for k, v in cell.items()}
        cell["capability_minus_today_mean_over_seeds"] = round(float(seeds["capability"] - seeds["today"]), 4)
        cell["seconds"] = round(time.perf_counter() - start, 1)
        results[bloc] = cell
    out = {"data": "shared/data trade by 22 HS sections 1962-2014, value added, PWT, distances",
           "protocol": f"joint projects, h={HORIZON}, development test years {DEV_YEARS[0]}-{DEV_YEARS[-1]}, pooled set-up "
                       f"({POOL_SETS} pseudo-blocs), tie-aware NDCG@10, 3 seeds, bootstrap 1,000 resamples over queries",
           "capability_features": CAPABILITY, "results": results,
           "rule": "adopt the capability features into the task only if they raise the mean NDCG@10 over seeds in both blocs"}
    record("capability", out)
    return out
