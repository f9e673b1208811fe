"""The two ranking tasks: candidates at year t, features at t, relevance from t + h.

Flows X[i→j,p,t] in USD, bloc B, horizon h.

**import-substitution** — which bloc supplier i can take a bloc importer j's extra-bloc imports of p.
Candidates: (j, p, i) with j, i ∈ B, i ≠ j and M_ext[j,p,t] ≥ ``min_ext_imports`` (1,000,000 USD).
share[t] = X[i→j,p,t] / M[j,p,t]; Δ = share[t+h] − share[t]; relevance 3 if Δ ≥ 0.05, 2 if
Δ ≥ 0.02, 1 if Δ ≥ 0.005, else 0; and 0 whenever X[i→j,p,t+h] ≤ X[i→j,p,t]. Query: (j, t).

**joint-projects** — which products two members a < b should co-develop, proxied by growth of
matched two-way trade. T = X[a→b,p] + X[b→a,p]; O = 2·min(X[a→b,p], X[b→a,p]); A = Σ_p T.
Candidates: (a, b, p) with T[a,b,p,t] ≥ ``min_two_way`` (100,000 USD). ΔO = (O[t+h] − O[t]) / A[t];
relevance 3 if ΔO ≥ 0.02, 2 if ≥ 0.005, 1 if ≥ 0.001, else 0. Query: (a, b, t).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from features.assemble import (
    BaseTables,
    import_substitution_features,
    joint_project_features,
    pair_product_table,
)
from features.columns import check_columns
from recommender.errors import RecommenderError

IMPORT_SUBSTITUTION = "import-substitution"
JOINT_PROJECTS = "joint-projects"
TASKS = (IMPORT_SUBSTITUTION, JOINT_PROJECTS)


@dataclass(frozen=True)
class TaskSpec:
    """Definition of a task: its keys, query group, thresholds and output columns."""

    name: str
    keys: tuple[str, ...]
    group: tuple[str, ...]
    output_keys: tuple[str, ...]
    horizon: int = 5
    min_value: float = 1_000_000.0
    thresholds: tuple[float, float, float] = (0.05, 0.02, 0.005)
    extra: dict = field(default_factory=dict)

    def params(self) -> dict:
        return {"task": self.name, "horizon": self.horizon, "min_candidate_value_usd": self.min_value,
                "relevance_thresholds": list(self.thresholds)}

    def with_options(self, *, horizon: int | None = None, min_value: float | None = None,
                     thresholds: tuple[float, float, float] | None = None) -> TaskSpec:
        values = asdict(self)
        values.update({k: v for k, v in {"horizon": horizon, "min_value": min_value, "thresholds": thresholds}.items() if v is not None})
        values["keys"], values["group"], values["output_keys"] = self.keys, self.group, self.output_keys
        values["thresholds"] = tuple(values["thresholds"])
        if values["horizon"] < 1:
            raise RecommenderError(f"horizon must be at least 1 year; got {values['horizon']}")
        return TaskSpec(**values)


SPECS: dict[str, TaskSpec] = {
    IMPORT_SUBSTITUTION: TaskSpec(IMPORT_SUBSTITUTION, ("year", "importer", "product", "supplier"), ("importer", "year"),
                                  ("year", "importer", "supplier", "product"), 5, 1_000_000.0, (0.05, 0.02, 0.005)),
    JOINT_PROJECTS: TaskSpec(JOINT_PROJECTS, ("year", "partner_a", "partner_b", "product"), ("partner_a", "partner_b", "year"),
                             ("year", "partner_a", "partner_b", "product"), 5, 100_000.0, (0.02, 0.005, 0.001)),
}


def get_spec(task: str) -> TaskSpec:
    if task not in SPECS:
        raise RecommenderError(f"unknown task {task!r}; choose one of {list(SPECS)}")
    return SPECS[task]


def grade(delta: np.ndarray, thresholds: tuple[float, float, float]) -> np.ndarray:
    """Relevance 3/2/1/0 from the change ``delta`` and the three thresholds (high to low)."""
    high, mid, low = thresholds
    return np.select([delta >= high, delta >= mid, delta >= low], [3, 2, 1], 0).astype(np.int8)


# ---- import substitution --------------------------------------------------------------------
def import_substitution_candidates(base: BaseTables, years: Collection[int], spec: TaskSpec) -> pd.DataFrame:
    imp = base.importer
    rows = imp[imp["year"].isin(list(years)) & (imp["ext_imports"] >= spec.min_value)][["year", "importer", "product"]]
    suppliers = pd.DataFrame({"supplier": list(base.bloc)})
    cand = rows.merge(suppliers, how="cross")
    return cand[cand["supplier"] != cand["importer"]].reset_index(drop=True)


def import_substitution_labels(trade: pd.DataFrame, candidates: pd.DataFrame, spec: TaskSpec) -> pd.Series:
    """Relevance of each candidate; NaN when year t + h is not in ``trade``."""
    check_columns(candidates, ["year", "importer", "product", "supplier"], "candidates")
    keys = ["year", "importer", "product"]
    flows = trade.groupby(["year", "exporter", "importer", "product"], observed=True)["value_usd"].sum()
    imports = trade.groupby(keys, observed=True)["value_usd"].sum()

    def at(offset: int) -> tuple[np.ndarray, np.ndarray]:
        year = candidates["year"] + offset
        x = flows.reindex(pd.MultiIndex.from_arrays([year, candidates["supplier"], candidates["importer"], candidates["product"]])).fillna(0).to_numpy()
        m = imports.reindex(pd.MultiIndex.from_arrays([year, candidates["importer"], candidates["product"]])).fillna(0).to_numpy()
        share = np.divide(x, m, out=np.zeros_like(x), where=m > 0)
        return x, share

    x0, s0 = at(0)
    x1, s1 = at(spec.horizon)
    rel = grade(s1 - s0, spec.thresholds).astype(float)
    rel[x1 <= x0] = 0
    observed = (candidates["year"] + spec.horizon).isin(trade["year"].unique()).to_numpy()
    rel[~observed] = np.nan
    return pd.Series(rel, index=candidates.index, name="relevance")


# ---- joint projects ---------------------------------------------------------------------------
def joint_project_candidates(base: BaseTables, years: Collection[int], spec: TaskSpec) -> pd.DataFrame:
    table = base.pair_products
    rows = table[table["year"].isin(list(years)) & (table["two_way_trade"] >= spec.min_value)]
    return rows[["year", "partner_a", "partner_b", "product"]].reset_index(drop=True)


def joint_project_labels(trade: pd.DataFrame, candidates: pd.DataFrame, spec: TaskSpec, bloc: Collection[str]) -> pd.Series:
    check_columns(candidates, ["year", "partner_a", "partner_b", "product"], "candidates")
    table = pair_product_table(trade, bloc).set_index(["year", "partner_a", "partner_b", "product"])
    pair_total = table.groupby(level=["year", "partner_a", "partner_b"])["two_way_trade"].sum()

    def matched(offset: int) -> np.ndarray:
        idx = pd.MultiIndex.from_arrays([candidates["year"] + offset, candidates["partner_a"], candidates["partner_b"], candidates["product"]])
        return table["matched_trade"].reindex(idx).fillna(0).to_numpy()

    a = pair_total.reindex(pd.MultiIndex.from_arrays([candidates["year"], candidates["partner_a"], candidates["partner_b"]])).to_numpy()
    delta = (matched(spec.horizon) - matched(0)) / a
    rel = grade(delta, spec.thresholds).astype(float)
    observed = (candidates["year"] + spec.horizon).isin(trade["year"].unique()).to_numpy()
    rel[~observed] = np.nan
    return pd.Series(rel, index=candidates.index, name="relevance")


# ---- datasets -------------------------------------------------------------------------------------
def candidates(task: str, base: BaseTables, years: Collection[int], spec: TaskSpec | None = None) -> pd.DataFrame:
    spec = spec or get_spec(task)
    if task == IMPORT_SUBSTITUTION:
        return import_substitution_candidates(base, years, spec)
    return joint_project_candidates(base, years, spec)


def features(task: str, base: BaseTables, cands: pd.DataFrame) -> pd.DataFrame:
    if task == IMPORT_SUBSTITUTION:
        return import_substitution_features(base, cands)
    return joint_project_features(base, cands)


def build_dataset(task: str, base: BaseTables, trade: pd.DataFrame, years: Collection[int], spec: TaskSpec | None = None) -> pd.DataFrame:
    """Candidates of ``years`` with their features (from ``base``) and relevance (from ``trade``).

    ``base`` must hold data up to the last of ``years`` only for features; labels read year
    t + h from ``trade`` and are NaN where that year is missing.
    """
    spec = spec or get_spec(task)
    cands = candidates(task, base, years, spec)
    table = features(task, base, cands)
    if task == IMPORT_SUBSTITUTION:
        table["relevance"] = import_substitution_labels(trade, table, spec).to_numpy()
    else:
        table["relevance"] = joint_project_labels(trade, table, spec, base.bloc).to_numpy()
    return table.sort_values(list(spec.group) + list(spec.keys)).reset_index(drop=True)


def feature_columns(table: pd.DataFrame, task: str) -> list[str]:
    spec = get_spec(task)
    return [c for c in table.columns if c not in spec.keys and c != "relevance"]
