"""Supply-shock scenarios: if an importer's purchases from some suppliers stop, what gap opens and who
in the bloc could fill it.

For importer j, cut suppliers C, share σ (1 = imports stop) and year t, per product p:

* lost imports :math:`G_p = σ \\sum_{i \\in C} X_{i \\to j, p, t}`;
* for each bloc member s (s ≠ j, s ∉ C), what it could redirect: its world exports of p not
  already sold to j, :math:`A_{sp} = \\sum_k X_{s \\to k, p, t} - X_{s \\to j, p, t}`;
* the share of the gap s could cover at current export levels, :math:`\\min(A_{sp}, G_p) / G_p`
  (never above 100 %, never above what s exports);
* coverable by the bloc :math:`\\min(G_p, \\sum_s A_{sp})`, and uncovered :math:`G_p - ` that.

:func:`supply_gap` is pure arithmetic on a trade table (testable by hand); :func:`run_scenario`
adds the import-substitution champion's score and calibrated probability for each (j, s, p).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from models.errors import ModelError
from models.tasks import IMPORT_SUBSTITUTION, get_task
from recommender import countries
from recommender.config import BLOCS, Config
from recommender.errors import RecommenderError
from recommender.outputs.about import about_rows
from recommender.outputs.files import check_output
from recommender.outputs.writers import write_sheets, write_table
from recommender.pipeline import (
    add_names,
    load_model,
    member_and_year,
    open_bank,
    product_names,
    product_set,
    score_candidates,
    trade_table,
)

#: Country groups accepted by ``--cut`` besides the blocs of :data:`recommender.config.BLOCS`.
GROUPS: dict[str, tuple[str, ...]] = {
    "EU27": ("AUT", "BEL", "BGR", "HRV", "CYP", "CZE", "DNK", "EST", "FIN", "FRA", "DEU", "GRC", "HUN", "IRL",
             "ITA", "LVA", "LTU", "LUX", "MLT", "NLD", "POL", "PRT", "ROU", "SVK", "SVN", "ESP", "SWE"),
    "G7": ("CAN", "FRA", "DEU", "ITA", "JPN", "GBR", "USA"),
}


def resolve_cut(spec: str) -> list[str]:
    """``"EU27,USA"`` → the sorted ISO3 codes; group names (EU27, G7, SCO, ...) expand to their members, and
    countries may be written as names ("United States; Japan" needs commas: ``"United States,Japan"``)."""
    members: set[str] = set()
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        name = part.upper()
        if name in GROUPS or name in BLOCS:
            members |= set(GROUPS.get(name) or BLOCS[name])
            continue
        try:
            members.add(countries.lookup(part)[0])
        except LookupError as exc:
            raise RecommenderError(f"--cut: {part!r} is neither a country nor a group ({', '.join([*GROUPS, *BLOCS])}): "
                                   f"{exc}") from None
    if not members:
        raise RecommenderError("--cut names no supplier: give ISO3 codes or a group, e.g. --cut EU27,USA")
    return sorted(members)


def supply_gap(trade: pd.DataFrame, importer: str, cut: Collection[str], bloc: Collection[str], *,
               share: float = 1.0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The gap per product and each bloc supplier's capacity to fill it, for one year's ``trade``.

    Returns ``(gaps, fillers)``: ``gaps`` has ``product, lost_usd, coverable_usd, uncovered_usd``
    (products with a gap, largest first); ``fillers`` has ``product, supplier, exports_usd``
    (world exports of p), ``sold_to_importer_usd``, ``available_usd`` and ``covers_share``.
    """
    if not 0 < share <= 1:
        raise RecommenderError(f"--share must be in (0, 1]; got {share}")
    if trade["year"].nunique() > 1:
        raise RecommenderError("supply_gap takes one year of trade")
    cut = set(cut)
    into = trade[trade["importer"] == importer]
    lost = (into[into["exporter"].isin(cut)].groupby("product", observed=True)["value_usd"].sum() * share)
    lost = lost[lost > 0].rename("lost_usd")
    suppliers = [s for s in bloc if s != importer and s not in cut]
    products = lost.index
    from_bloc = trade[trade["exporter"].isin(suppliers) & trade["product"].isin(products)]
    exports = from_bloc.groupby(["product", "exporter"], observed=True)["value_usd"].sum().rename("exports_usd")
    sold = from_bloc[from_bloc["importer"] == importer].groupby(["product", "exporter"], observed=True)["value_usd"].sum()
    fillers = exports.to_frame().join(sold.rename("sold_to_importer_usd")).fillna({"sold_to_importer_usd": 0.0})
    fillers = fillers.reset_index().rename(columns={"exporter": "supplier"})
    fillers["available_usd"] = (fillers["exports_usd"] - fillers["sold_to_importer_usd"]).clip(lower=0.0)
    fillers = fillers.merge(lost.reset_index(), on="product")
    fillers["covers_share"] = np.minimum(fillers["available_usd"], fillers["lost_usd"]) / fillers["lost_usd"]
    fillers = fillers[fillers["available_usd"] > 0].drop(columns="lost_usd")
    pooled = fillers.groupby("product")["available_usd"].sum().reindex(products, fill_value=0.0)
    gaps = lost.to_frame()
    gaps["coverable_usd"] = np.minimum(gaps["lost_usd"], pooled)
    gaps["uncovered_usd"] = gaps["lost_usd"] - gaps["coverable_usd"]
    gaps = gaps.reset_index().sort_values(["lost_usd", "product"], ascending=[False, True], ignore_index=True)
    fillers = fillers.sort_values(["product", "covers_share", "available_usd", "supplier"],
                                  ascending=[True, False, False, True], ignore_index=True)
    return gaps, fillers


@dataclass
class Scenario:
    """A scenario's table (one row per product × bloc supplier, products with no filler kept once) and totals."""

    table: pd.DataFrame
    totals: dict[str, float]
    importer: str
    cut: list[str]
    share: float
    year: int
    model_version: str | None


def run_scenario(cfg: Config, importer: str, cut: str | Collection[str], *, share: float = 1.0,
                 year: int | None = None, top: int | None = None, products: list[str] | None = None,
                 log: Callable[[str], None] | None = None) -> Scenario:
    """The supply shock on the bank's trade of ``year`` (default the last), with model scores when a champion exists.

    ``importer`` and the ``cut`` countries may be codes or names; ``products`` (HS codes at any level, sections or
    names, a coarser one standing for the codes under it) limits the scenario to those products.
    """
    bank = open_bank(cfg)
    chosen = product_set(bank, products, log=log) if products else None
    importer, year = member_and_year(cfg, bank, importer, year, option="--importer")
    cut_codes = resolve_cut(cut) if isinstance(cut, str) else sorted(set(cut))
    if importer in cut_codes:
        cut_codes.remove(importer)
    trade = trade_table(bank, [year])
    if chosen is not None:
        trade = trade[trade["product"].isin(chosen)]
    gaps, fillers = supply_gap(trade, importer, cut_codes, cfg.bloc.members, share=share)
    if top:
        gaps = gaps.head(top)
        fillers = fillers[fillers["product"].isin(gaps["product"])]
    table = gaps.merge(fillers, on="product", how="left")
    table["importer"] = importer
    table["score"] = np.nan
    table["probability"] = np.nan
    keyed = table["supplier"].notna()
    try:  # only a missing champion is forgiven: the arithmetic then stands on its own
        model = load_model(cfg, IMPORT_SUBSTITUTION)
    except ModelError as exc:
        if "no champion model" not in str(exc):
            raise
        model = None
    version = model.version if model is not None else None
    if model is not None and keyed.any():
        scored = score_candidates(cfg, IMPORT_SUBSTITUTION, table.loc[keyed, ["importer", "supplier", "product"]],
                                  year=year, model=model)
        table.loc[keyed, "score"] = scored.rows["score"].to_numpy()
        table.loc[keyed, "probability"] = scored.rows["probability"].to_numpy()
    table = add_names(table, get_task(IMPORT_SUBSTITUTION), bank.classification, product_names(bank))
    columns = ["product", "product_name", "lost_usd", "coverable_usd", "uncovered_usd", "supplier", "supplier_name",
               "exports_usd", "sold_to_importer_usd", "available_usd", "covers_share", "score", "probability"]
    totals = {"gap_usd": float(gaps["lost_usd"].sum()), "coverable_usd": float(gaps["coverable_usd"].sum()),
              "uncovered_usd": float(gaps["uncovered_usd"].sum()), "products": int(len(gaps))}
    return Scenario(table[columns], totals, importer, cut_codes, share, year, version)


def write_scenario(cfg: Config, result: Scenario, path: str | Path) -> Path:
    """The scenario to ``path``: a table of every product × supplier row (.csv, .parquet), or a workbook with
    a sheet of the gaps (one row per product), a sheet of the suppliers and an About sheet."""
    path = check_output(path)
    if path.suffix.lower() != ".xlsx":
        return write_table(result.table, path)
    gaps = result.table.drop_duplicates("product")[["product", "product_name", "lost_usd", "coverable_usd", "uncovered_usd"]]
    suppliers = result.table[result.table["supplier"].notna()]
    about = about_rows(cfg, open_bank(cfg), model_versions=[result.model_version or "none (no champion): arithmetic only"],
                       year=result.year, extra=[("importer", f"{result.importer} ({countries.country_name(result.importer)})"),
                                                ("suppliers cut", ", ".join(result.cut)), ("share cut", f"{result.share:.0%}"),
                                                ("gap", f"{result.totals['gap_usd']:,.0f} USD over {result.totals['products']:,} products")])
    return write_sheets(path, [("gaps", gaps.reset_index(drop=True)), ("suppliers", suppliers.reset_index(drop=True))], about)
