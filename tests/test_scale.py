"""Out of core: the bank's DuckDB view, year-by-year features and the feature store."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

import recommender.pipeline.datasets as datasets
from features.assemble import build_base
from features.sectors import product_sectors
from features.trade import TradeView, aggregate_products
from models import tasks
from recommender.bank import DataBank
from recommender.bank.synthetic import WorldSpec
from recommender.config import Config
from recommender.demo import build_demo_bank
from recommender.errors import RecommenderError
from recommender.pipeline.datasets import FeatureCache, dataset_key, task_table, year_chunks

BLOC = ("CHN", "IND", "KAZ", "PAK", "RUS", "UZB")


@pytest.fixture(scope="module")
def demo_bank(tmp_path_factory) -> tuple[Config, DataBank]:
    cfg = Config(home=tmp_path_factory.mktemp("scale") / "home")
    list(build_demo_bank(cfg, spec=WorldSpec.tiny(seed=11)))
    return cfg, DataBank(cfg.bank_dir)


def _whole_trade(bank: DataBank, level: int | None) -> pd.DataFrame:
    return aggregate_products(bank.read("trade", columns=["year", "exporter", "importer", "product", "value_usd"]), level)


@pytest.mark.parametrize("level", [None, 4, 2])
def test_trade_view_equals_the_in_memory_aggregation(demo_bank, level):
    _, bank = demo_bank
    view = bank.trade_view(BLOC, product_level=level)
    reference = TradeView.from_trade(_whole_trade(bank, level), BLOC)
    for name, keys in (("exports", ["year", "exporter", "product"]), ("imports", ["year", "importer", "product"]),
                       ("flows", ["year", "exporter", "importer", "product"])):
        got, want = getattr(view, name), getattr(reference, name).sort_values(keys).reset_index(drop=True)
        pd.testing.assert_frame_equal(got, want, check_dtype=False, obj=name)
    assert set(view.flows["exporter"]).union(view.flows["importer"]) > set(BLOC)
    assert (view.flows["exporter"].isin(BLOC) | view.flows["importer"].isin(BLOC)).all()


def test_trade_view_of_some_years_reads_only_them(demo_bank):
    _, bank = demo_bank
    years = bank.years("trade")
    view = bank.trade_view(BLOC, years=[years[0], years[-1]])
    assert view.years == [years[0], years[-1]]
    with pytest.raises(RecommenderError, match="finer than the bank's product codes"):
        bank.trade_view(BLOC, product_level=8)


def test_bank_queries_draw_no_progress_bar(demo_bank):
    """DuckDB's progress bar (queries over 2 s, as at BACI scale) would land in Dask worker logs and stdout CSVs."""
    _, bank = demo_bank
    with bank.query() as con:
        assert con.execute("SELECT current_setting('enable_progress_bar')").fetchone()[0] is False


@pytest.mark.parametrize("task", list(tasks.TASKS))
def test_year_by_year_tables_equal_the_whole_panel(demo_bank, tmp_path, monkeypatch, task):
    """One year at a time (the BACI-scale path) gives exactly the whole-panel table."""
    _, bank = demo_bank
    spec = tasks.get_task(task).with_options(horizon=3)
    trade = _whole_trade(bank, None)
    base = build_base(trade, BLOC, capacity=bank.read("capacity"), geography=bank.read("geography"),
                      products=product_sectors(trade["product"].unique(), bank.classification))
    want = spec.build_dataset(base, bank.years("trade"))
    monkeypatch.setattr(datasets, "CHUNK_ROWS", 1)  # every year its own chunk: built by two worker processes
    assert all(len(c) == 1 for c in year_chunks(bank, bank.years("trade")))
    monkeypatch.setattr(datasets, "LOCAL_WORKERS", 2)  # as on a machine of two CPUs, whatever this one has
    said: list[str] = []
    got = task_table(bank, FeatureCache(tmp_path / "features"), spec, BLOC, product_level=6, log=said.append).table
    assert any("2 worker processes" in line for line in said), said
    got = got.sort_values([*spec.group, *spec.keys]).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want, check_dtype=False, check_exact=False, rtol=1e-9)
    assert got["relevance"].notna().any() and got["relevance"].isna().any()  # labelled years and the last ones


def test_a_script_without_a_main_guard_still_builds_its_features(demo_bank, tmp_path):
    """Spawned workers re-import the script that started them: one that calls the library at top level
    (no ``if __name__ == "__main__":``) breaks the pool. The build says why and finishes in this process."""
    _, bank = demo_bank
    script = tmp_path / "unguarded.py"
    script.write_text(textwrap.dedent(f"""
        from models import tasks
        from recommender.bank import DataBank
        from recommender.pipeline import datasets
        from recommender.pipeline.feature_cache import FeatureCache
        datasets.CHUNK_ROWS, datasets.LOCAL_WORKERS = 1, 2
        spec = tasks.get_task("import-substitution").with_options(horizon=3)
        out = datasets.task_table(DataBank({str(bank.root)!r}), FeatureCache({str(tmp_path / "features")!r}), spec,
                                  {BLOC!r}, product_level=6, log=print)
        print("ROWS", len(out.table))
    """))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=1800,
                          cwd=Path(__file__).parent.parent)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "building in this process" in done.stdout and "if __name__" in done.stdout
    assert int(done.stdout.split("ROWS ")[1].split()[0]) > 0


def test_year_chunks_follow_the_row_budget(demo_bank):
    _, bank = demo_bank
    years = bank.years("trade")
    rows = bank.rows_by_year("trade")
    assert sum(rows.values()) == len(bank.read("trade", columns=["year"]))
    assert year_chunks(bank, years, rows=10**12) == [years]
    two = year_chunks(bank, years, rows=rows[years[0]] + rows[years[1]])
    assert two[0] == years[:2] and sum(two, []) == years


def _cache_files(store: FeatureCache, key) -> list[str]:
    return sorted(p.name for p in store.folder(key).iterdir())


def _expected_files(store: FeatureCache, key) -> list[str]:
    return sorted(["key.json", *(store.path(key, y).name for y in key.years)])


def test_feature_cache_reuses_and_keys_what_determines_a_table(demo_bank, tmp_path):
    cfg, bank = demo_bank
    store = FeatureCache(tmp_path / "features")
    spec = tasks.get_task(tasks.JOINT_PROJECTS).with_options(horizon=3)
    first = task_table(bank, store, spec, BLOC, product_level=6)
    again = task_table(bank, store, spec, BLOC, product_level=6)
    assert first.built_years == bank.years("trade") and not first.reused_years
    assert again.reused and again.reused_years == bank.years("trade")
    assert again.describe() == f"{len(bank.years('trade'))} years reused, 0 built"
    pd.testing.assert_frame_equal(first.table, again.table)
    keys = {dataset_key(bank, s, b, lv).digest for s, b, lv in [
        (spec, BLOC, 6), (spec, BLOC[:-1], 6), (spec, BLOC, 4), (spec.with_options(min_value=1e6), BLOC, 6),
        (spec.with_options(horizon=2), BLOC, 6)]}
    assert len(keys) == 5
    assert sorted(p.name for p in store.root.iterdir()) == sorted([first.key.family.digest, "fingerprints.json"])
    assert _cache_files(store, first.key) == _expected_files(store, first.key)  # no staging debris


def test_a_failed_build_keeps_only_whole_years_and_the_next_build_reuses_them(demo_bank, tmp_path, monkeypatch):
    _, bank = demo_bank
    store = FeatureCache(tmp_path / "features")
    spec = tasks.get_task(tasks.IMPORT_SUBSTITUTION).with_options(horizon=3)
    calls = {"n": 0}
    real = datasets.YearBuilder.table

    def failing(self, years, **kw):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("killed mid-build")
        return real(self, years, **kw)

    monkeypatch.setattr(datasets, "CHUNK_ROWS", 1)  # a year per chunk: two years finish, the third fails
    monkeypatch.setattr(datasets, "LOCAL_WORKERS", 1)  # in this process, where the failure is patched in
    monkeypatch.setattr(datasets.YearBuilder, "table", failing)
    with pytest.raises(RuntimeError, match="killed"):
        task_table(bank, store, spec, BLOC, product_level=6)
    key = dataset_key(bank, spec, BLOC, 6)
    years = bank.years("trade")
    assert store.years(key) == years[:2] and not store.has(key)
    assert _cache_files(store, key) == sorted(["key.json", *(store.path(key, y).name for y in years[:2])])
    monkeypatch.setattr(datasets.YearBuilder, "table", real)
    resumed = task_table(bank, store, spec, BLOC, product_level=6)
    assert resumed.reused_years == years[:2] and resumed.built_years == years[2:]
    clean = task_table(bank, FeatureCache(tmp_path / "clean"), spec, BLOC, product_level=6)
    pd.testing.assert_frame_equal(resumed.table, clean.table)


def test_a_new_geography_rebuilds_every_year_and_the_old_years_go(tmp_path, tiny_world):
    cfg = Config(home=tmp_path / "home")
    list(build_demo_bank(cfg, spec=WorldSpec.tiny(seed=11)))
    bank = DataBank(cfg.bank_dir)
    store = FeatureCache(cfg.feature_dir)
    spec = tasks.get_task(tasks.JOINT_PROJECTS).with_options(horizon=3)
    before = task_table(bank, store, spec, BLOC, product_level=6).key
    from recommender.bank.ingest import ingest_geography

    geo = tmp_path / "geo.csv"
    tiny_world.geography().head(50).to_csv(geo, index=False)
    ingest_geography(bank, geo, replace=True)
    after = task_table(bank, store, spec, BLOC, product_level=6)
    assert not after.reused_years and after.key.digest != before.digest
    assert set(after.key.years.values()).isdisjoint(before.years.values())  # every year reads the geography
    assert _cache_files(store, after.key) == _expected_files(store, after.key)  # the old bank state's years are gone


@pytest.mark.parametrize("task", [tasks.JOINT_PROJECTS, tasks.DIVERSIFICATION])
def test_a_new_or_corrected_year_rebuilds_exactly_the_years_that_read_it(tmp_path, task):
    """A new BACI release: one more year, then a corrected year; only the years reading them are rebuilt."""
    from recommender.bank.ingest import ingest_capacity, ingest_geography, ingest_trade

    demo = Config(home=tmp_path / "demo")
    list(build_demo_bank(demo, spec=WorldSpec.tiny(seed=11)))
    files = demo.home / "synthetic" / "seed-11"
    trade = pd.read_parquet(files / "trade.parquet")
    years = sorted(trade["year"].unique())
    last, corrected = years[-1], years[4]
    bank = DataBank(tmp_path / "bank")
    ingest_trade(bank, _write(trade[trade["year"] < last], tmp_path / "release1.parquet"))
    ingest_capacity(bank, files / "capacity.csv")
    ingest_geography(bank, files / "geography.csv")
    store = FeatureCache(tmp_path / "features")
    spec = tasks.get_task(task).with_options(horizon=3)
    first = task_table(bank, store, spec, BLOC, product_level=6)
    assert first.built_years == years[:-1]

    ingest_trade(bank, _write(trade[trade["year"] == last], tmp_path / "release2.parquet"))
    added = task_table(bank, store, spec, BLOC, product_level=6)
    assert added.built_years == [last - spec.horizon, last]  # the new year, and the year it labels
    assert added.reused_years == [y for y in years if y not in added.built_years]

    fixed = trade[trade["year"] == corrected].copy()
    fixed.loc[fixed.index[:50], "value_usd"] *= 3.0
    ingest_trade(bank, _write(fixed, tmp_path / "correction.parquet"), replace=True)
    again = task_table(bank, store, spec, BLOC, product_level=6)
    reads = {corrected + lag for lag in spec.lags} | {corrected - spec.horizon}
    assert again.built_years == sorted(reads & set(years))
    cold = task_table(bank, FeatureCache(tmp_path / "cold"), spec, BLOC, product_level=6)
    pd.testing.assert_frame_equal(again.table, cold.table)  # reused years are exactly what a cold build gives
    assert _cache_files(store, again.key) == _expected_files(store, again.key)


def _write(frame: pd.DataFrame, path):
    frame.to_parquet(path, index=False)
    return path


def test_pooled_candidates_from_the_bank_equal_the_in_memory_path(demo_bank):
    """``train --pool``: pseudo-blocs drawn from the bank's view and their tables as from the whole flow table."""
    from models.pooling import pooled_dataset, pseudo_blocs
    from recommender.pipeline import pooled_candidates

    _, bank = demo_bank
    spec = tasks.get_task(tasks.JOINT_PROJECTS).with_options(horizon=3)
    got = pooled_candidates(bank, spec, BLOC, 6, 2, 0, lambda _m: None)
    trade = _whole_trade(bank, None)
    sets = pseudo_blocs(trade, BLOC, n_sets=2, seed=0)
    assert sets == pseudo_blocs(bank.trade_view(BLOC), BLOC, n_sets=2, seed=0)
    extra = {"capacity": bank.read("capacity"), "geography": bank.read("geography"),
             "products": product_sectors(trade["product"].unique(), bank.classification)}
    want = pooled_dataset(spec, build_base(trade, BLOC, **extra), trade, sets, bank.years("trade"), **extra)
    assert len(got) > 0 and set(got["pool"]) == {"set000", "set001"}
    pd.testing.assert_frame_equal(got, want, check_dtype=False, check_exact=False, rtol=1e-9)


def test_a_new_year_refits_only_the_new_fold_and_gives_the_cold_result(tmp_path):
    """Issue 30: the test year two trainings share keeps its fold models (model and ablation); every number,
    prediction and the refit model equal a training with no fold cache."""
    import shutil

    import models.evaluation as evaluation
    from models.fit_cache import FitCache, fit_key
    from recommender.bank.ingest import ingest_capacity, ingest_geography, ingest_trade
    from recommender.pipeline import train_task

    demo = Config(home=tmp_path / "demo")
    list(build_demo_bank(demo, spec=WorldSpec.tiny(seed=11)))
    files = demo.home / "synthetic" / "seed-11"
    trade = pd.read_parquet(files / "trade.parquet")
    last = int(trade["year"].max())
    cfg = Config(home=tmp_path / "home")
    bank = DataBank(cfg.bank_dir)
    ingest_trade(bank, _write(trade[trade["year"] < last], tmp_path / "release1.parquet"))
    ingest_capacity(bank, files / "capacity.csv")
    ingest_geography(bank, files / "geography.csv")
    options = {"horizon": 2, "overrides": {"n_estimators": "60"}, "n_resamples": 50}
    first = train_task(cfg, tasks.IMPORT_SUBSTITUTION, **options)
    ingest_trade(bank, _write(trade[trade["year"] == last], tmp_path / "release2.parquet"))

    fits, real = [], evaluation.fit_with

    def counted(cache, *args, **kwargs):
        fits.append(cache)
        return real(cache, *args, **kwargs)

    evaluation.fit_with = counted
    try:
        added = train_task(cfg, tasks.IMPORT_SUBSTITUTION, **options)
    finally:
        evaluation.fit_with = real
    shared = sorted(set(first.evaluation.test_years) & set(added.evaluation.test_years))
    assert shared and added.evaluation.test_years != first.evaluation.test_years  # the test years moved on by one
    cache = fits[0]
    assert isinstance(cache, FitCache) and cache.hits == 2 * len(shared), cache.describe()  # model + ablation
    shutil.rmtree(cfg.feature_dir / "folds")  # the same bank trained with no fold cache: every fold fit again
    fresh = train_task(cfg, tasks.IMPORT_SUBSTITUTION, **options)
    pd.testing.assert_frame_equal(added.evaluation.predictions, fresh.evaluation.predictions)
    assert added.evaluation.overall == fresh.evaluation.overall
    assert added.evaluation.best_iteration == fresh.evaluation.best_iteration
    assert len(list((cfg.feature_dir / "folds").glob("*.txt"))) >= 2 * len(added.evaluation.test_years)
    # any changed value is a new key
    table = fresh.evaluation.predictions
    features = fresh.evaluation.features
    spec = tasks.get_task(tasks.IMPORT_SUBSTITUTION)
    changed = table.copy()
    changed.loc[changed.index[0], features[0]] += 1.0
    params = fresh.evaluation.params
    assert fit_key(table, None, features, spec, params, 0) != fit_key(changed, None, features, spec, params, 0)
    assert fit_key(table, None, features, spec, params, 0) != fit_key(table, None, features, spec, params, 1)
    memo: dict = {}  # the column digests kept between the model's and the ablation's keys: the same keys
    assert fit_key(table, None, features, spec, params, 0, memo=memo) == fit_key(table, None, features, spec, params, 0)
    assert fit_key(table, None, features[:3], spec, params, 0, memo=memo) == fit_key(table, None, features[:3], spec, params, 0)
    assert fit_key(changed, None, features, spec, params, 0, memo=memo) == fit_key(changed, None, features, spec, params, 0)
