"""The diversification task on a world whose activations are set by hand.

Five countries (A and B the bloc; C and D the rest of the world; E only imports), three products,
years 2000–2006, horizon 2. A exports only x until 2003 and starts exporting y at scale in 2004:
its (A, y) candidates of 2002 and 2003 must be labelled 1 (RCA ≥ 1 two years later), everything
else 0, and years whose outcome lies after 2006 unlabelled.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.assemble import build_base
from features.complexity import compute_complexity
from features.diversification import diversification_candidates
from models.baselines import atlas
from models.tasks import BLOC_POOL, DIVERSIFICATION, POOL, WORLD_POOL, get_task

YEARS = range(2000, 2007)
BLOC = ("A", "B")


def hand_world(a_starts_y: int = 2004) -> pd.DataFrame:
    rows = []
    for year in YEARS:
        exports = {("B", "x"): 100, ("B", "y"): 100, ("B", "z"): 100, ("C", "z"): 100, ("C", "x"): 50,
                   ("D", "y"): 100, ("D", "x"): 20, ("A", "x"): 100}
        if year >= a_starts_y:
            exports[("A", "y")] = 200
        rows += [(year, c, "E", p, float(v)) for (c, p), v in exports.items()]
        rows.append((year, "A", "B", "x", 10.0))  # A trades with B, not with the others
    return pd.DataFrame(rows, columns=["year", "exporter", "importer", "product", "value_usd"])


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    spec = get_task(DIVERSIFICATION).with_options(horizon=2)
    base = build_base(hand_world(), BLOC)
    return spec.build_dataset(base, list(YEARS))


def test_rca_is_balassa_from_world_exports():
    trade = hand_world()
    exports = trade.groupby(["year", "exporter", "product"], as_index=False)["value_usd"].sum().rename(columns={"value_usd": "value"})
    rca = compute_complexity(exports).set_index(["year", "exporter", "product"])["rca"]
    x_ay, x_a = 200, 310  # A's exports of y and of everything in 2004
    x_y, x_w = 400, 880
    assert rca[(2004, "A", "y")] == pytest.approx((x_ay / x_a) / (x_y / x_w))
    assert rca[(2003, "A", "y")] == 0.0  # a missing flow is 0


def test_candidates_are_the_products_below_half_rca_three_years_running(table):
    keys = set(map(tuple, table[["year", "country", "product"]].to_numpy()))
    # no candidates before 2002: t − 1 and t − 2 are unknown
    assert not any(y < 2002 for y, _, _ in keys)
    assert {(2002, "A", "y"), (2002, "A", "z"), (2003, "A", "y"), (2002, "C", "y"), (2002, "D", "z")} <= keys
    assert (2004, "A", "y") not in keys  # RCA ≥ 0.5 in 2004
    assert (2006, "A", "y") not in keys  # RCA ≥ 0.5 in 2004 and 2005, inside the window
    assert not any(c == "B" for _, c, _ in keys)  # B exports everything competitively
    assert not any(p == "x" and c == "A" for _, c, p in keys)
    candidates = diversification_candidates(compute_complexity(
        hand_world().groupby(["year", "exporter", "product"], as_index=False)["value_usd"].sum().rename(columns={"value_usd": "value"})),
        [2002], ceiling=0.5)
    assert set(candidates["country"]) == {"A", "C", "D"}


def test_labels_are_activations_h_years_later(table):
    rel = table.set_index(["year", "country", "product"])["relevance"]
    assert rel[(2002, "A", "y")] == 1 and rel[(2003, "A", "y")] == 1
    assert rel[(2002, "A", "z")] == 0 and rel[(2002, "C", "y")] == 0 and rel[(2003, "D", "z")] == 0
    assert rel[(2004, "A", "z")] == 0  # 2006 is known
    assert rel.loc[[k for k in rel.index if k[0] >= 2005]].isna().all()  # 2007, 2008 are not
    assert set(rel.dropna().unique()) <= {0.0, 1.0}


def test_bloc_rows_are_tagged_and_partners_named(table):
    tags = table.drop_duplicates("country").set_index("country")[POOL]
    assert tags["A"] == BLOC_POOL and tags["C"] == WORLD_POOL and tags["D"] == WORLD_POOL
    row = table.set_index(["year", "country", "product"]).loc[(2002, "A", "z")]
    assert row["partner"] == "B" and row["partner_rca"] > 1  # B exports z competitively
    assert row["bloc_competitive_members"] == 1
    assert row["strong_member_intensity"] == pytest.approx(10 / 110)  # A trades 10 with B of 110 in all (exports; it imports nothing)
    spec = get_task(DIVERSIFICATION)
    features = spec.feature_columns(table)
    assert "partner" not in features and "market_usd" not in features and POOL not in features
    assert {"country_rca", "rca_lag1", "rca_slope", "country_density", "country_cog", "pci", "country_eci",
            "country_imports", "world_import_growth_3y", "bloc_best_rca", "bloc_ext_imports"} <= set(features)


def test_features_of_a_year_do_not_read_later_years():
    """Leakage guard: what happens after t (A starting y in 2004 or not at all) leaves year t's features alone."""
    spec = get_task(DIVERSIFICATION).with_options(horizon=2)
    early = spec.build_dataset(build_base(hand_world(2004), BLOC), [2002, 2003])
    never = spec.build_dataset(build_base(hand_world(2100), BLOC), [2002, 2003])
    features = spec.feature_columns(early)
    pd.testing.assert_frame_equal(early[["year", "country", "product", *features]],
                                  never[["year", "country", "product", *features]])
    assert early["relevance"].sum() > never["relevance"].sum()  # only the outcome differs


def test_atlas_baseline_varies_within_a_country_and_weights_as_documented():
    table = pd.DataFrame({"country": "A", "year": 2000, "country_distance": [0.2, 0.8, 0.5],
                          "pci": [0.0, 0.0, 0.0], "country_cog": [0.0, 0.0, 0.0]})
    score = atlas()(table)
    assert np.argsort(-score).tolist() == [0, 2, 1]  # nearness decides when PCI and COG are flat
    both = table.assign(pci=[0.0, 3.0, 0.0])
    assert atlas((0.0, 1.0, 0.0))(both).argmax() == 1


def test_every_feature_is_registered_with_a_readable_reason(table):
    from features.registry import describe, reason

    spec = get_task(DIVERSIFICATION)
    features = spec.feature_columns(table)
    assert len(describe(features)) == len(features)  # unknown columns raise
    row = table.iloc[0]
    for column in features:
        sentence = reason(column, float(row[column]) if np.isfinite(row[column]) else float("nan"),
                          {"country": "Kazakhstan", "partner": "Russia", "sector": "machinery"})
        assert sentence and "{" not in sentence and "}" not in sentence, (column, sentence)


def test_world_training_never_tests_on_the_world_and_sees_no_outcome_after_t(table):
    """The other countries' rows join the fit and early stopping, never the test; the panel is scored, never
    trained on, in the test year."""
    from models.evaluation import fold_split
    from models.pooling import world_split

    spec = get_task(DIVERSIFICATION).with_options(horizon=2)
    labelled = table[table["relevance"].notna()]
    bloc, world, panels = world_split(table, size_column="country_exports_total", year=2004, largest=3)
    assert set(bloc[POOL]) == {BLOC_POOL} and set(world[POOL]) == {WORLD_POOL} and world["relevance"].notna().all()
    assert len(bloc) + len(world) == len(table[table[POOL] == BLOC_POOL]) + int(labelled[POOL].eq(WORLD_POOL).sum())
    assert set(panels["world150"]["country"]) <= set(table["country"]) and panels["world150"]["country"].nunique() <= 3
    assert (panels["world150"]["year"] >= 2004).all() and panels["world150"]["relevance"].notna().all()  # tested rows only
    fit, valid, test = fold_split(bloc, world, 2005, spec)  # labelled years 2002-2004: fit 2002, validate 2003
    assert set(fit[POOL]) == {BLOC_POOL, WORLD_POOL} and len(test)
    assert set(valid[POOL]) == {BLOC_POOL, WORLD_POOL} and set(test[POOL]) == {BLOC_POOL}  # early stopping: everyone's; test: the bloc's
    assert len(valid) == int((bloc["year"].eq(2003) & bloc["relevance"].notna()).sum() + world["year"].eq(2003).sum())
    assert (fit["year"] + spec.horizon < 2005).all() and (valid["year"] + spec.horizon <= 2005).all()
    assert set(fit["year"]).isdisjoint(valid["year"])  # validation years are held out of the fit
    whole = table.copy()  # the training's split moves the columns out of its table as it goes: the same parts
    moved = world_split(whole, size_column="country_exports_total", year=2004, largest=3, consume=True)
    assert whole.columns.empty
    for got, want in ((moved[0], bloc), (moved[1], world), (moved[2]["world150"], panels["world150"])):
        pd.testing.assert_frame_equal(got, want)


def test_the_capability_experiments_probability_of_year_t_reads_outcomes_known_at_t_only(tiny_world):
    """Issue 27 §3 (``make bench-capability``): each year's diversification probability, a joint-project
    feature of that year, comes from a model fitted on candidate years ≤ t − h; outcomes after t change nothing."""
    from benchmarks.bench_capability import yearly_probabilities
    from models.ranker import load_params

    spec = get_task(DIVERSIFICATION).with_options(horizon=2)
    bloc = list(tiny_world.countries["iso3"][:10])
    base = build_base(tiny_world.trade, bloc)
    data = spec.build_dataset(base, tiny_world.spec.years, base.complexity)
    params = load_params(DIVERSIFICATION)
    t = int(data.loc[data["relevance"].notna(), "year"].max())  # the last labelled year: every earlier label is known
    probability = yearly_probabilities(data, spec, params, [t], rounds=20, log=lambda _m: None)
    assert len(probability) == int((data["year"] == t).sum()) and probability["div_probability"].between(0, 1).all()
    later = data["year"] + spec.horizon > t
    assert later.any() and data.loc[later, "relevance"].notna().any()
    flipped = data.assign(relevance=np.where(later, 1.0 - data["relevance"], data["relevance"]))
    again = yearly_probabilities(flipped, spec, params, [t], rounds=20, log=lambda _m: None)
    np.testing.assert_array_equal(again["div_probability"], probability["div_probability"])
    known = ~later & data["relevance"].notna()
    changed = data.assign(relevance=np.where(known, 1.0 - data["relevance"], data["relevance"]))
    moved = yearly_probabilities(changed, spec, params, [t], rounds=20, log=lambda _m: None)
    assert not np.array_equal(moved["div_probability"], probability["div_probability"])  # the known ones do count


def test_recommend_answers_with_the_bloc_members_only(pipeline_home):
    """The world's other countries train the diversification model; the year's recommendations and
    the reference a batch's percentile is read against are the bloc's candidates, all of them."""
    from recommender.outputs.recommend import recommend
    from recommender.pipeline import score_candidates

    cfg, _ = pipeline_home
    scored = score_candidates(cfg, DIVERSIFICATION)
    assert set(scored.candidates["country"]) == set(cfg.bloc.members) & set(scored.candidates["country"])
    assert scored.candidates["country"].nunique() >= 5  # the bloc's members are there
    table, _ = recommend(cfg, DIVERSIFICATION)
    assert set(table["country"]) <= set(cfg.bloc.members) and len(table) == len(scored.candidates)


def test_the_build_leaves_out_only_the_worlds_unlabelled_rows_and_stores_features_as_float32():
    """What the diversification build skips (other countries' candidates without an observed outcome) is
    never read; every row it keeps has the values the full build gives it, features rounded to float32."""
    from models.tasks import Task

    spec = get_task(DIVERSIFICATION).with_options(horizon=2)
    base = build_base(hand_world(), BLOC)
    full = Task.build_dataset(spec, base, list(YEARS))  # every candidate, float64
    kept = spec.build_dataset(base, list(YEARS))
    expected = full[(full[POOL] == BLOC_POOL) | full["relevance"].notna()].reset_index(drop=True)
    assert len(kept) == len(expected) < len(full)  # the world's unlabelled years are gone, the bloc's kept
    assert kept.loc[kept[POOL] == BLOC_POOL, "relevance"].isna().any()  # the bloc's latest years: what recommend scores
    features = [c for c in spec.feature_columns(full) if full[c].dtype == np.float64]
    assert features and all(kept[c].dtype == np.float32 for c in features)
    assert kept["partner_rca"].dtype == np.float64 and kept["market_usd"].dtype == np.float64  # shown as they are
    pd.testing.assert_frame_equal(kept, expected.astype(dict.fromkeys(features, np.float32)))


def test_world_negatives_are_sampled_and_weighted_for_training_only(table):
    """Sampled to at most N negatives a year, every positive kept, each kept negative weighted by the year's
    negatives / N; the bloc's rows and the test panel are the unsampled split's."""
    from models.pooling import negative_sample, world_split
    from models.tasks import WEIGHT

    bloc, world, panels = world_split(table, size_column="country_exports_total", year=2004, largest=3)
    s_bloc, s_world, s_panels = world_split(table, size_column="country_exports_total", year=2004, largest=3,
                                            negatives_per_year=1, seed=0)
    pd.testing.assert_frame_equal(s_bloc, bloc)
    pd.testing.assert_frame_equal(s_panels["world150"], panels["world150"])
    assert WEIGHT not in bloc and WEIGHT in s_world and WEIGHT not in world
    assert (s_world["relevance"] == 1).sum() == (world["relevance"] == 1).sum()  # every positive
    for year, part in s_world.groupby("year"):
        negatives = int(((world["year"] == year) & (world["relevance"] == 0)).sum())
        drawn = part[part["relevance"] == 0]
        if negatives > 1:
            assert (drawn[WEIGHT] == negatives).all()
        else:
            assert (drawn[WEIGHT] == 1).all() and len(drawn) == negatives
    # in large numbers: about N a year, and the weights add up to the year's negatives
    rng = np.random.default_rng(1)
    year = np.repeat([2000, 2001, 2002], [50_000, 20_000, 500])
    positive = rng.random(year.size) < 0.02
    rows, weights = negative_sample(year, positive, per_year=1_000, seed=3)
    assert positive[rows].sum() == positive.sum()
    for y in (2000, 2001):
        negatives = (year[rows] == y) & ~positive[rows]
        assert 850 < negatives.sum() < 1_150
        assert weights[negatives].sum() == pytest.approx(((year == y) & ~positive).sum(), rel=0.1)
    assert ((year[rows] == 2002) & ~positive[rows]).sum() == ((year == 2002) & ~positive).sum()  # a small year whole
    again = negative_sample(year, positive, per_year=1_000, seed=3)
    np.testing.assert_array_equal(again[0], rows)
