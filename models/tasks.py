"""The ranking tasks as objects: each owns its keys, query group, candidates, labels, features,
baselines and readable names, so a new task is one new class here.

Flows X[i→j,p,t] in USD, bloc B, horizon h. Candidates at year t, features from years ≤ t,
relevance from t + h.

**import-substitution** — which bloc supplier i can take a bloc importer j's extra-bloc imports of p.
Candidates: (j, p, i) with j, i ∈ B, i ≠ j and M_ext[j,p,t] ≥ ``min_value`` (1,000,000 USD).
share[t] = X[i→j,p,t] / M[j,p,t]; Δ = share[t+h] − share[t]; relevance 3 if Δ ≥ 0.05, 2 if
Δ ≥ 0.02, 1 if Δ ≥ 0.005, else 0; and 0 whenever X[i→j,p,t+h] ≤ X[i→j,p,t]. Query: (j, t).

**joint-projects** — which products two members a < b should co-develop, proxied by growth of
matched two-way trade. T = X[a→b,p] + X[b→a,p]; O = 2·min(X[a→b,p], X[b→a,p]); A = Σ_p T.
Candidates: (a, b, p) with T[a,b,p,t] ≥ ``min_value`` (100,000 USD). ΔO = (O[t+h] − O[t]) / A[t];
relevance 3 if ΔO ≥ 0.02, 2 if ≥ 0.005, 1 if ≥ 0.001, else 0. Query: (a, b, t).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from features.assemble import (
    FEATURE_LAGS,
    BaseTables,
    capacity_columns,
    import_substitution_features,
    joint_project_features,
    pair_product_table,
)
from features.columns import check_columns
from features.complexity import compute_complexity
from features.diversification import (
    INFO_COLUMNS,
    diversification_candidates,
    diversification_features,
)
from features.keys import lookup
from features.trade import TradeView, supplier_shares
from models import baselines as bl
from models.errors import ModelError
from models.names import DIVERSIFICATION, IMPORT_SUBSTITUTION, JOINT_PROJECTS

POOL = "pool"
"""Column naming the country set a candidate was built for: ``BLOC_POOL`` for the bloc, else a pseudo-bloc id."""
BLOC_POOL = "bloc"
WORLD_POOL = "world"
"""The tag of the world's other countries in a task that trains on every country (diversification)."""
WEIGHT = "weight"
"""Column of a training row's weight, where some rows stand for others (:func:`models.pooling.world_split`'s
sampled negatives); absent or NaN: 1."""


def grade(delta: np.ndarray, thresholds: tuple[float, float, float]) -> np.ndarray:
    """Relevance 3/2/1/0 from the change ``delta`` and the three thresholds (high to low)."""
    high, mid, low = thresholds
    return np.select([delta >= high, delta >= mid, delta >= low], [3, 2, 1], 0).astype(np.int8)


@dataclass(frozen=True)
class Task:
    """A ranking task. Subclasses implement candidates, features, labels and baselines.

    ``roles`` are the two country columns in the order users write them (``importer, supplier``;
    ``partner_a, partner_b``); ``group`` is the query; ``keys`` identify a candidate.
    """

    name: str
    keys: tuple[str, ...]
    group: tuple[str, ...]
    output_keys: tuple[str, ...]
    roles: tuple[str, str]
    horizon: int = 5
    min_value: float = 1_000_000.0
    thresholds: tuple[float, float, float] = (0.05, 0.02, 0.005)
    unordered_pair: bool = False  # joint projects: (a, b) and (b, a) are one pair, stored a < b
    focus_role: str = ""  # the role ``--country`` filters on; "" = either role
    baseline_inputs: tuple[str, ...] = ()  # the feature columns the heuristics read (for the ablation)
    decision_metric: str = "ndcg_at_10"  # what the best baseline, the lift and the champion decision use
    lags: tuple[int, ...] = FEATURE_LAGS  # years back the features of year t read (t − lag)
    info_columns: tuple[str, ...] = ()  # columns shown beside a recommendation that are not features
    world_training: bool = False  # candidates of every country; the bloc's tagged "bloc", the rest train only
    needs_world_outcomes: bool = False  # labels read every country's exports at t + h, not the bloc's flows
    validation_years: int = 1  # the bloc's years T − h − k + 1 … T − h that early-stop a fold of test year T
    validate_on_pool: bool = False  # the pool's (world's) candidates of those years early-stop too, beside the bloc's

    # ---- options -----------------------------------------------------------------------------
    def params(self) -> dict:
        return {"task": self.name, "horizon": self.horizon, "min_candidate_value_usd": self.min_value,
                "relevance_thresholds": list(self.thresholds), "decision_metric": self.decision_metric}

    def with_options(self, *, horizon: int | None = None, min_value: float | None = None,
                     thresholds: tuple[float, float, float] | None = None) -> Task:
        changes = {k: v for k, v in {"horizon": horizon, "min_value": min_value,
                                     "thresholds": tuple(thresholds) if thresholds else None}.items() if v is not None}
        task = replace(self, **changes)
        if task.horizon < 1:
            raise ModelError(f"horizon must be at least 1 year; got {task.horizon}")
        return task

    # ---- columns -------------------------------------------------------------------------------
    @property
    def input_columns(self) -> list[str]:
        """What a user's projects file must have: the country roles that identify a candidate, and the product
        (diversification: country, product; a ``partner`` column there passes through as written)."""
        return [*(r for r in self.roles if r in self.keys), "product"]

    def normalise_pairs(self, keys: pd.DataFrame) -> pd.DataFrame:
        """Order unordered pairs (a < b); ordered tasks are returned as they are."""
        if not self.unordered_pair:
            return keys
        a, b = keys[self.roles[0]].to_numpy(), keys[self.roles[1]].to_numpy()
        return keys.assign(**{self.roles[0]: np.where(a < b, a, b), self.roles[1]: np.where(a < b, b, a)})

    def concerns(self, table: pd.DataFrame, countries: Collection[str]) -> pd.Series:
        """Rows that concern any of ``countries`` (the ``--country`` filter)."""
        roles = [self.focus_role] if self.focus_role else list(self.roles)
        return table[roles].isin(list(countries)).any(axis=1)

    def feature_columns(self, table: pd.DataFrame) -> list[str]:
        """Every column but the keys, the label, the country-set id of pooled tables and the info columns."""
        return [c for c in table.columns if c not in self.keys and c not in {"relevance", POOL, WEIGHT, *self.info_columns}]

    # ---- behaviour -----------------------------------------------------------------------------
    def candidates(self, base: BaseTables, years: Collection[int]) -> pd.DataFrame:
        raise NotImplementedError

    def features(self, base: BaseTables, candidates: pd.DataFrame) -> pd.DataFrame:
        raise NotImplementedError

    def labels(self, trade: pd.DataFrame, candidates: pd.DataFrame, bloc: Collection[str]) -> pd.Series:
        raise NotImplementedError

    def baselines(self, *, seed: int = 0) -> dict[str, bl.Baseline]:
        raise NotImplementedError

    def outcomes(self, base: BaseTables) -> pd.DataFrame:
        """What :meth:`labels` reads when no later trade is given: the base's flows that touch the bloc."""
        return base.trade

    def _observed(self, trade: pd.DataFrame, candidates: pd.DataFrame) -> np.ndarray:
        return (candidates["year"] + self.horizon).isin(trade["year"].unique()).to_numpy()

    def build_dataset(self, base: BaseTables, years: Collection[int], trade: pd.DataFrame | None = None) -> pd.DataFrame:
        """Candidates of ``years`` with their features and relevance.

        Features at t read years ≤ t of ``base``; labels read year t + h of ``trade`` (default
        ``base.trade``, every flow that touches the bloc, which is all the labels need) and are NaN
        where that year is missing.
        """
        table = self.features(base, self.candidates(base, years))
        table["relevance"] = self.labels(self.outcomes(base) if trade is None else trade, table, base.bloc).to_numpy()
        return table.sort_values(list(self.group) + list(self.keys)).reset_index(drop=True)


@dataclass(frozen=True)
class ImportSubstitution(Task):
    def candidates(self, base: BaseTables, years: Collection[int]) -> pd.DataFrame:
        imp = base.importer
        rows = imp[imp["year"].isin(list(years)) & (imp["ext_imports"] >= self.min_value)][["year", "importer", "product"]]
        cand = rows.merge(pd.DataFrame({"supplier": list(base.bloc)}), how="cross")
        return cand[cand["supplier"] != cand["importer"]].reset_index(drop=True)

    def features(self, base: BaseTables, candidates: pd.DataFrame) -> pd.DataFrame:
        return import_substitution_features(base, candidates)

    def labels(self, trade: pd.DataFrame, candidates: pd.DataFrame, bloc: Collection[str]) -> pd.Series:
        """Relevance of each candidate; NaN when year t + h is not in ``trade``."""
        check_columns(candidates, ["year", "importer", "product", "supplier"], "candidates")
        keys = candidates.rename(columns={"supplier": "exporter"})
        now, later = supplier_shares(trade, keys), supplier_shares(trade, keys, offset=self.horizon)
        rel = grade((later["supplier_share"] - now["supplier_share"]).to_numpy(), self.thresholds).astype(float)
        rel[later["flow_value"].to_numpy() <= now["flow_value"].to_numpy()] = 0
        rel[~self._observed(trade, candidates)] = np.nan
        return pd.Series(rel, index=candidates.index, name="relevance")

    def baselines(self, *, seed: int = 0) -> dict[str, bl.Baseline]:
        return {
            "current_share": bl.column("supplier_share"),
            "momentum": bl.column("supplier_share_change_3y"),
            "supplier_rca": bl.column("supplier_rca"),
            "supplier_density": bl.column("supplier_density"),
            "export_potential": bl.export_potential,
            "random": bl.random(seed),
        }


@dataclass(frozen=True)
class JointProjects(Task):
    def candidates(self, base: BaseTables, years: Collection[int]) -> pd.DataFrame:
        table = base.pair_products
        rows = table[table["year"].isin(list(years)) & (table["two_way_trade"] >= self.min_value)]
        return rows[["year", "partner_a", "partner_b", "product"]].reset_index(drop=True)

    def features(self, base: BaseTables, candidates: pd.DataFrame) -> pd.DataFrame:
        return joint_project_features(base, candidates)

    def labels(self, trade: pd.DataFrame, candidates: pd.DataFrame, bloc: Collection[str]) -> pd.Series:
        check_columns(candidates, ["year", "partner_a", "partner_b", "product"], "candidates")
        table = pair_product_table(trade, bloc).set_index(["year", "partner_a", "partner_b", "product"])

        def at(offset: int, column: str) -> np.ndarray:
            idx = pd.MultiIndex.from_arrays([candidates["year"] + offset, candidates["partner_a"], candidates["partner_b"], candidates["product"]])
            return table[column].reindex(idx).to_numpy()

        pair_total = at(0, "pair_trade")
        delta = (np.nan_to_num(at(self.horizon, "matched_trade")) - np.nan_to_num(at(0, "matched_trade"))) / pair_total
        rel = grade(delta, self.thresholds).astype(float)
        rel[~self._observed(trade, candidates)] = np.nan
        return pd.Series(rel, index=candidates.index, name="relevance")

    def baselines(self, *, seed: int = 0) -> dict[str, bl.Baseline]:
        return {
            "two_way_share": bl.column("two_way_share"),
            "momentum": bl.column("two_way_share_change_3y"),
            "grubel_lloyd": bl.column("grubel_lloyd"),
            "pair_share": bl.column("pair_share"),
            "complementarity": bl.product_complementarity,
            "random": bl.random(seed),
        }


@dataclass(frozen=True)
class Diversification(Task):
    """New production capacities: which products a country should start to export competitively.

    Candidates are every country of the world (bloc members tagged ``pool = "bloc"``, the others
    ``"world"``, :data:`models.pooling.POOL`): the model learns from the world and is judged on the
    bloc. Relevance is binary, RCA[c,p,t+h] ≥ ``activation`` (1). Early stopping reads the validation
    years' candidates of every country (``validate_on_pool``): the bloc's alone hold a handful of
    activations, and stopping on them left folds at 2–35 rounds on the development years.
    """

    ceiling: float = 0.5  # RCA below this in t − 2, t − 1 and t: the country does not make the product yet
    activation: float = 1.0  # RCA at t + h at or above this: it does

    def params(self) -> dict:
        return {**super().params(), "rca_ceiling": self.ceiling, "rca_activation": self.activation}

    def build_dataset(self, base: BaseTables, years: Collection[int], trade: pd.DataFrame | None = None) -> pd.DataFrame:
        """As :meth:`Task.build_dataset`, with two differences that change no result (the 25-year BACI HS6
        world holds about 20 M candidates):

        * an other country's candidate without an observed outcome is left out before its features are
          computed: the world's candidates only train and test, both on observed outcomes, and a
          recommendation is the bloc's (a candidate's features never read another candidate);
        * features are stored as ``float32`` (half the memory; LightGBM bins them in any case, and
          training, testing and scoring all read the stored values). Keys, labels and the
          :data:`INFO_COLUMNS` shown beside a recommendation keep their types.
        """
        candidates = self.candidates(base, years)
        relevance = self.labels(self.outcomes(base) if trade is None else trade, candidates, base.bloc).to_numpy()
        keep = (candidates[POOL] == BLOC_POOL).to_numpy() | ~np.isnan(relevance)
        table = self.features(base, candidates[keep].reset_index(drop=True))
        compact = [c for c in self.feature_columns(table) if table[c].dtype == np.float64]
        table = table.astype(dict.fromkeys(compact, np.float32))
        table["relevance"] = relevance[keep]
        return table.sort_values(list(self.group) + list(self.keys)).reset_index(drop=True)

    def candidates(self, base: BaseTables, years: Collection[int]) -> pd.DataFrame:
        cand = diversification_candidates(base.complexity, years, ceiling=self.ceiling)
        members = set(base.bloc)
        return cand.assign(**{POOL: np.where(cand["country"].isin(members), BLOC_POOL, WORLD_POOL)})

    def features(self, base: BaseTables, candidates: pd.DataFrame) -> pd.DataFrame:
        out = diversification_features(base.complexity, base.imports, base.trade, base.importer, base.bloc, candidates)
        out = out.assign(**{POOL: candidates[POOL].to_numpy()}) if POOL in candidates else out
        return capacity_columns(out, base, "country")

    def labels(self, trade, candidates: pd.DataFrame, bloc: Collection[str]) -> pd.Series:
        """1 if RCA[c,p,t+h] ≥ ``activation`` (0 when c does not export p then), NaN when t + h is not in ``trade``.

        ``trade``: world exports (a :class:`~features.trade.TradeView`, or a complexity table with ``rca``).
        """
        check_columns(candidates, ["year", "country", "product"], "candidates")
        if isinstance(trade, TradeView):
            panel = compute_complexity(trade.exports)[["year", "exporter", "product", "rca"]]
        elif isinstance(trade, pd.DataFrame) and "rca" in trade:
            panel = trade
        else:
            raise ModelError("diversification labels need world exports (a TradeView or a complexity table), not bloc flows")
        later = candidates[["year", "country", "product"]].assign(year=candidates["year"] + self.horizon)
        rca = lookup(later, panel, ["year", "country", "product"], ["rca"], ["year", "exporter", "product"])["rca"]
        observed = later["year"].isin(set(panel["year"].unique())).to_numpy()
        rel = (np.nan_to_num(rca, nan=0.0) >= self.activation).astype(float)
        rel[~observed] = np.nan
        return pd.Series(rel, index=candidates.index, name="relevance")

    def outcomes(self, base: BaseTables):
        return base.complexity

    def baselines(self, *, seed: int = 0) -> dict[str, bl.Baseline]:
        return {
            "density": bl.column("country_density"),
            "cog": bl.column("country_cog"),
            "pci": bl.column("pci"),
            "rca_level": bl.column("country_rca"),
            "rca_momentum": bl.column("country_rca_change_3y"),
            "export_growth": bl.column("country_export_growth_3y"),
            "atlas": bl.atlas(),
            "atlas_low_hanging": bl.atlas(bl.ATLAS_LOW_HANGING),
            "random": bl.random(seed),
        }


TASKS: dict[str, Task] = {
    IMPORT_SUBSTITUTION: ImportSubstitution(
        IMPORT_SUBSTITUTION, keys=("year", "importer", "product", "supplier"), group=("importer", "year"),
        output_keys=("year", "importer", "supplier", "product"), roles=("importer", "supplier"),
        horizon=5, min_value=1_000_000.0, thresholds=(0.05, 0.02, 0.005), focus_role="importer",
        baseline_inputs=("supplier_share", "supplier_share_change_3y", "supplier_rca", "supplier_density",
                         "supplier_world_share", "importer_imports", "trade_intensity", "flow_value")),
    JOINT_PROJECTS: JointProjects(
        JOINT_PROJECTS, keys=("year", "partner_a", "partner_b", "product"), group=("partner_a", "partner_b", "year"),
        output_keys=("year", "partner_a", "partner_b", "product"), roles=("partner_a", "partner_b"),
        horizon=5, min_value=100_000.0, thresholds=(0.02, 0.005, 0.001), unordered_pair=True,
        baseline_inputs=("two_way_share", "two_way_share_change_3y", "grubel_lloyd", "pair_share", "partner_a_rca",
                         "partner_b_rca", "partner_a_import_share", "partner_b_import_share")),
    DIVERSIFICATION: Diversification(
        DIVERSIFICATION, keys=("year", "country", "product"), group=("country", "year"),
        output_keys=("year", "country", "product"), roles=("country", "partner"), horizon=5, min_value=0.0,
        thresholds=(1.0, 1.0, 1.0), focus_role="country", decision_metric="pooled_ap",
        lags=(0, 1, 2, 3, 5), info_columns=INFO_COLUMNS, world_training=True, needs_world_outcomes=True, validation_years=3,
        validate_on_pool=True,
        baseline_inputs=("country_density", "country_distance", "country_cog", "pci", "country_rca",
                         "country_rca_change_3y", "country_export_growth_3y")),
}


def get_task(name: str) -> Task:
    """The task called ``name``; :class:`ModelError` listing the known tasks otherwise."""
    if name not in TASKS:
        raise ModelError(f"unknown task {name!r}; choose one of {list(TASKS)}")
    return TASKS[name]


def as_task(task: Task | str) -> Task:
    """``task`` itself, or the task of that name (:func:`get_task`): the library's entry points take either."""
    return task if isinstance(task, Task) else get_task(task)
