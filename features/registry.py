"""The one feature registry: every feature declared once, with grain, formula, source and a reason.

A *base* feature lives at a grain (``exporter×product``, ``importer×product``, ...). Task tables
use it under a *role*: ``supplier_rca`` is the base feature ``rca`` for the supplier of an
import-substitution candidate; ``partner_a_density`` is ``density`` for the first partner of a
joint project. Pair-, flow- and product-level features keep their base name.

The registry drives feature assembly (:mod:`features.assemble`), the generated documentation
(:func:`markdown_table`) and the human-readable reasons of recommendations (:func:`reason`).
"""

from __future__ import annotations

import math
import string
from dataclasses import dataclass

ROLES = ("supplier", "importer", "partner_a", "partner_b", "country")


@dataclass(frozen=True)
class Feature:
    name: str
    grain: str
    description: str
    formula: str
    source: str
    unit: str  # usd | share | pp (share change) | index | change (of an index) | count | log | flag | km
    reason: str  # "{country}", "{partner}" and "{value}" are filled in; "" = no sentence


_F = Feature
_BALASSA = "Balassa (1965)"
_HH = "Hidalgo & Hausmann (2009); ecomplexity"
_ATLAS = "Hausmann et al. (2014), Atlas of Economic Complexity"

FEATURES: dict[str, Feature] = {f.name: f for f in [
    # exporter × product (world exports; complexity and relatedness)
    _F("export_value", "exporter×product", "exports to the world", "X_cp = Σ_j X_{c→j,p}", "trade data", "usd",
       "{country} exports {value} of this product to the world"),
    _F("world_share", "exporter×product", "share of world exports of the product", "X_cp / Σ_c X_cp", "trade data", "share",
       "{country} supplies {value} of world exports of this product"),
    _F("rca", "exporter×product", "revealed comparative advantage", "(X_cp/X_c) / (X_p/X)", _BALASSA, "index",
       "{country} has a revealed comparative advantage of {value} in it"),
    _F("mcp", "exporter×product", "presence: RCA ≥ 1", "M_cp = [RCA_cp ≥ 1]", _HH, "flag",
       "{country} already exports it competitively"),
    _F("diversity", "exporter", "number of products with RCA ≥ 1", "k_c0 = Σ_p M_cp", _HH, "count",
       "{country} is competitive in {value} products"),
    _F("eci", "exporter", "Economic Complexity Index", "standardised eigenvector of M̃_cc'", _HH, "index",
       "{country}'s economic complexity index is {value}"),
    _F("density", "exporter×product", "relatedness: share of nearby products already exported",
       "ω_cp = Σ_p' M_cp' φ_pp' / Σ_p' φ_pp'", "Hidalgo et al. (2007)", "share",
       "{country} already exports many related products (density {value})"),
    _F("distance", "exporter×product", "1 − density", "1 − ω_cp", _ATLAS, "share", ""),
    _F("coi", "exporter", "Complexity Outlook Index", "Σ_p ω_cp (1 − M_cp) PCI_p, standardised", _ATLAS, "index", ""),
    _F("cog", "exporter×product", "Complexity Outlook Gain", "(1 − M_cp) Σ_p' (1 − M_cp') φ_p'p PCI_p' / Σ φ_p'", _ATLAS, "index",
       "making it would open further complex products to {country} (COG {value})"),
    _F("export_growth_3y", "exporter×product", "3-year log growth of exports", "ln(1+X_t) − ln(1+X_{t−3})", "trade data", "log",
       "{country}'s exports of it changed by {value} over three years"),
    _F("export_growth_5y", "exporter×product", "5-year log growth of exports", "ln(1+X_t) − ln(1+X_{t−5})", "trade data", "log",
       "{country}'s exports of it changed by {value} over five years"),
    _F("rca_change_3y", "exporter×product", "3-year change in RCA", "RCA_t − RCA_{t−3}", _BALASSA, "change",
       "{country}'s RCA in it moved by {value} in three years"),
    _F("exports_total", "exporter", "total exports, all products", "X_c = Σ_p X_cp", "trade data", "usd",
       "{country} exports {value} a year in all"),
    _F("rca_lag1", "exporter×product", "RCA a year earlier", "RCA_{t−1} (0 without exports)", _BALASSA, "index",
       "{country}'s RCA in it was {value} a year earlier"),
    _F("rca_lag3", "exporter×product", "RCA three years earlier", "RCA_{t−3}", _BALASSA, "index",
       "{country}'s RCA in it was {value} three years earlier"),
    _F("rca_lag5", "exporter×product", "RCA five years earlier", "RCA_{t−5}", _BALASSA, "index",
       "{country}'s RCA in it was {value} five years earlier"),
    _F("rca_slope", "exporter×product", "trend of RCA over t−5…t", "least-squares slope of RCA on year (lags 0, 1, 2, 3, 5)",
       _BALASSA, "change", "{country}'s RCA in it has been moving by {value} a year"),
    # bloc × product (diversification: the bloc's position in a product a country does not make yet)
    _F("bloc_best_rca", "bloc×product", "the best other member's RCA in the product", "max_{m∈B, m≠c} RCA_mp",
       _BALASSA, "index", "a bloc member has an RCA of {value} in it: the know-how is in the bloc"),
    _F("bloc_competitive_members", "bloc×product", "other members exporting it competitively", "#{m∈B, m≠c: RCA_mp ≥ 1}",
       _HH, "count", "{value} other bloc members export it competitively"),
    _F("bloc_ext_imports", "bloc×product", "the bloc's imports of the product from outside it", "Σ_{j∈B} Σ_{k∉B} X_{k→j,p}",
       "trade data", "usd", "the bloc imports {value} of it from outside: a market for new capacity"),
    _F("strong_member_intensity", "country×bloc×product", "trade with the members strong in the product",
       "Σ_{m∈B, RCA_mp≥1} (X_{c→m} + X_{m→c}) / (X_c + M_c)", "trade data", "share",
       "{value} of {country}'s trade is with members strong in it"),
    _F("world_import_growth_3y", "product", "3-year log growth of world imports of the product", "ln(1+M_pt) − ln(1+M_p,t−3)",
       "trade data", "log", "world demand for it changed by {value} in three years"),
    # product
    _F("pci", "product", "Product Complexity Index", "eigenvector of M̃_pp', scaled like ECI", _HH, "index",
       "it is a complex product (PCI {value})"),
    _F("ubiquity", "product", "number of countries with RCA ≥ 1", "k_p0 = Σ_c M_cp", _HH, "count",
       "only {value} countries export it competitively"),
    # importer × product
    _F("imports", "importer×product", "imports from the world", "M_jp = Σ_k X_{k→j,p}", "trade data", "usd",
       "{country} imports {value} of this"),
    _F("ext_imports", "importer×product", "imports from outside the bloc", "Σ_{k∉B} X_{k→j,p}", "trade data", "usd",
       "{country} imports {value} of this from outside the bloc"),
    _F("ext_share", "importer×product", "extra-bloc share of imports", "M^ext_jp / M_jp", "trade data", "share",
       "{value} of {country}'s imports of it come from outside the bloc"),
    _F("bloc_share", "importer×product", "share of imports from bloc members", "Σ_{k∈B} X_{k→j,p} / M_jp", "trade data", "share",
       "bloc members already supply {value} of {country}'s imports of it"),
    _F("supplier_hhi", "importer×product", "supplier concentration", "Σ_k s_kjp²", "Herfindahl (1950); Hirschman (1945)", "share",
       "{country} buys it from few suppliers (HHI {value})"),
    _F("n_suppliers", "importer×product", "number of supplying countries", "#{k: X_{k→j,p} > 0}", "trade data", "count", ""),
    _F("import_share", "importer×product", "the product's share of the country's imports", "m_jp = M_jp / Σ_p' M_jp'",
       "trade data", "share", "it is {value} of {country}'s imports"),
    _F("import_growth_3y", "importer×product", "3-year log growth of imports", "ln(1+M_t) − ln(1+M_{t−3})", "trade data", "log",
       "{country}'s imports of it changed by {value} over three years"),
    # exporter × importer × product
    _F("flow_value", "exporter×importer×product", "supplier's exports to the importer", "X_{i→j,p}", "trade data", "usd",
       "{supplier} already sells {value} of it to {importer}"),
    _F("reverse_flow", "exporter×importer×product", "importer's exports to the supplier", "X_{j→i,p}", "trade data", "usd",
       "{importer} sells {value} of it to {supplier}"),
    _F("supplier_share", "exporter×importer×product", "supplier's share of the importer's imports", "s_ijp = X_{i→j,p} / M_jp",
       "trade data", "share", "{supplier} has {value} of {importer}'s imports of it"),
    _F("supplier_share_lag3", "exporter×importer×product", "supplier share three years earlier", "s_ijp,t−3", "trade data", "share", ""),
    _F("supplier_share_change_3y", "exporter×importer×product", "change in supplier share", "s_t − s_{t−3}", "trade data", "pp",
       "{supplier}'s share of {importer}'s imports of it moved {value} in three years"),
    _F("grubel_lloyd", "exporter×importer×product", "intra-industry (two-way) trade index",
       "1 − |X_ij − X_ji| / (X_ij + X_ji)", "Grubel & Lloyd (1971)", "share", "trade in it already flows both ways (GL {value})"),
    _F("matched_trade", "exporter×importer×product", "two-way matched trade", "2·min(X_{a→b,p}, X_{b→a,p})", "trade data", "usd",
       "{value} of it is already traded both ways"),
    # joint projects: pair × product
    _F("two_way_trade", "pair×product", "trade in the product both ways", "T_abp = X_{a→b,p} + X_{b→a,p}", "trade data", "usd",
       "the two trade {value} of it with each other"),
    _F("two_way_share", "pair×product", "matched trade as a share of the pair's trade", "O_abp / A_ab", "trade data", "share",
       "matched two-way trade in it is {value} of the pair's trade"),
    _F("two_way_share_change_3y", "pair×product", "momentum of the matched-trade share", "O/A_t − O/A_{t−3}", "trade data", "pp",
       "the matched-trade share moved {value} in three years"),
    _F("pair_share", "pair×product", "product's share of the pair's trade", "T_abp / A_ab", "trade data", "share",
       "it is {value} of the pair's trade"),
    # exporter × importer
    _F("bilateral_trade", "exporter×importer", "total trade between the two, all products", "Σ_p X_{i→j,p} + X_{j→i,p}",
       "trade data", "usd", "{supplier} and {importer} trade {value} a year"),
    _F("trade_intensity", "exporter×importer", "trade intensity index", "(x_ij / X_i) / (M_j / M_w)", "Brown (1949); Kojima (1964)",
       "index", "{supplier} sells {value}× more to {importer} than {importer}'s weight in world trade implies"),
    _F("complementarity", "exporter×importer", "trade complementarity index", "1 − ½ Σ_p |m_jp − x_ip|", "Michaely (1996)", "share",
       "{supplier}'s exports match {importer}'s imports (complementarity {value})"),
    _F("reverse_complementarity", "exporter×importer", "complementarity the other way round", "1 − ½ Σ_p |m_ip − x_jp|",
       "Michaely (1996)", "share", ""),
    _F("distance_km", "exporter×importer", "distance between the countries", "great-circle km", "CEPII GeoDist", "km",
       "the two are {value} apart"),
    _F("contiguous", "exporter×importer", "common border", "1 if contiguous", "CEPII GeoDist", "flag", "they share a border"),
    _F("common_language", "exporter×importer", "common official language", "1 if shared", "CEPII GeoDist", "flag",
       "they share an official language"),
    # country × sector (capacity)
    _F("va_sector", "country×sector", "value added of the product's sector", "VA_cs (current USD)", "UN SNAAMA / INDSTAT", "usd",
       "{country}'s {sector} sector adds {value} of value"),
    _F("va_share_gdp", "country×sector", "sector value added as a share of GDP", "VA_cs / GDP_c", "UN SNAAMA", "share",
       "{sector} is {value} of {country}'s GDP"),
    _F("va_growth_5y", "country×sector", "5-year log growth of sector value added", "ln(VA_t / VA_{t−5})", "UN SNAAMA", "log",
       "{country}'s {sector} sector's value added changed by {value} in five years"),
    _F("gdp", "country", "gross domestic product", "GDP_c (current USD)", "UN SNAAMA", "usd", "{country}'s GDP is {value}"),
    _F("capital_stock", "country", "capital stock at constant 2017 prices", "PWT rnna × 10⁶ (USD)", "Feenstra et al. (2015)",
       "usd", "{country}'s capital stock is {value} (2017 prices)"),
    _F("employment", "country", "persons employed (millions)", "PWT emp", "Feenstra et al. (2015)", "count",
       "{country} employs {value} million people"),
]}


def resolve(column: str) -> tuple[Feature, str | None]:
    """``"supplier_rca"`` → (FEATURES["rca"], "supplier"); ``"pci"`` → (FEATURES["pci"], None)."""
    if column in FEATURES:
        return FEATURES[column], None
    for role in ROLES:
        if column.startswith(role + "_") and column[len(role) + 1:] in FEATURES:
            return FEATURES[column[len(role) + 1:]], role
    raise KeyError(f"column {column!r} is not a registered feature (see features.registry.FEATURES)")


def describe(columns: list[str]) -> list[dict[str, str]]:
    """Registry rows for a task's feature columns (unknown columns raise)."""
    rows = []
    for column in columns:
        feature, role = resolve(column)
        rows.append({"column": column, "feature": feature.name, "role": role or "", "grain": feature.grain,
                     "description": feature.description, "formula": feature.formula, "source": feature.source})
    return rows


def format_usd(value: float) -> str:
    """``$1.2tn``, ``$5.6bn``, ``$374.9m``, ``$12.0k``, ``$950``."""
    for scale, suffix in ((1e12, "tn"), (1e9, "bn"), (1e6, "m"), (1e3, "k")):
        if abs(value) >= scale:
            return f"${value / scale:.1f}{suffix}"
    return f"${value:,.0f}"


def format_value(value: float, unit: str) -> str:
    """A value as a person writes it, by unit.

    ``usd`` → ``$5.6bn``; ``share`` → ``12%``, ``3.4%``, ``<0.1%``; ``pp`` → ``+1.2 pp``; ``log`` (a log change
    ln(x_t / x_{t−k})) → the percentage change e^v − 1 (``+35%``, ``-0.4%``); ``count`` → ``1,234``
    (``3.5`` below 100 when not whole); ``km`` → ``3,200 km``; ``change`` → ``+0.12``; ``index`` → ``0.85``.
    Never ``-0.00``: values that round to zero print as zero.

    >>> [format_value(v, u) for v, u in ((0.25, "share"), (0.0004, "share"), (-0.003, "log"), (0.3, "log"), (3.46, "count"))]
    ['25%', '<0.1%', '-0.3%', '+35%', '3.5']
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    value = float(value)
    if unit == "usd":
        return format_usd(value)
    if unit == "share":
        if 0 < abs(value) < 0.0005:
            return "<0.1%"
        return f"{100 * value:.0f}%" if abs(value) >= 0.1 else f"{_zero(100 * value, 1):.1f}%"
    if unit == "pp":
        return f"{_zero(100 * value, 1):+.1f} pp"
    if unit == "count":
        return f"{value:,.0f}" if value == round(value) or abs(value) >= 100 else f"{value:.1f}"
    if unit == "km":
        return f"{value:,.0f} km"
    if unit == "log":
        change = 100 * math.expm1(value)
        return f"{change:+,.0f}%" if abs(change) >= 10 else f"{_zero(change, 1):+.1f}%"
    if unit == "change":
        return f"{_zero(value, 2):+.2f}"
    return f"{_zero(value, 2):.2f}"


def _zero(value: float, digits: int) -> float:
    """``value``, or 0.0 when it rounds to zero (so no ``-0.0``)."""
    return round(value, digits) + 0.0 if round(value, digits) == 0 else value


def reason(column: str, value: float, names: dict[str, str]) -> str:
    """A short sentence for one feature value; ``names`` maps roles (and ``sector``) to names.

    >>> reason("importer_ext_imports", 2.1e9, {"importer": "Kazakhstan"})
    'Kazakhstan imports $2.1bn of this from outside the bloc'
    """
    feature, role = resolve(column)
    country = names.get(role or "", names.get("country", names.get("supplier", names.get("partner_a", ""))))
    if value is None or (isinstance(value, float) and math.isnan(value)):  # a missing figure can weigh too
        one_country = role or feature.grain.startswith("country")
        return f"no figure for {feature.description}" + (f" of {country}" if country and one_country else "")
    if not feature.reason:
        return f"{feature.description}: {format_value(value, feature.unit)}"
    fields = {"country": country, "value": format_value(value, feature.unit), "sector": names.get("sector", "the sector"),
              "supplier": names.get("supplier", names.get("partner_a", "")),
              "importer": names.get("importer", names.get("partner_b", ""))}
    return feature.reason.format(**fields)


def reason_names(column: str) -> tuple[str, ...]:
    """The keys of ``names`` that :func:`reason` may read for ``column``: two rows that agree on the value and
    on these names get the same sentence (what lets a caller write each distinct sentence once)."""
    feature, role = resolve(column)
    fields = {name for _, name, _, _ in string.Formatter().parse(feature.reason) if name}
    keys: list[str] = []
    if "country" in fields or role or feature.grain.startswith("country"):  # the template's, or a missing figure's
        keys += [k for k in (role, "country", "supplier", "partner_a") if k]
    if "sector" in fields:
        keys.append("sector")
    if "supplier" in fields:
        keys += ["supplier", "partner_a"]
    if "importer" in fields:
        keys += ["importer", "partner_b"]
    return tuple(dict.fromkeys(keys))


def markdown_table() -> str:
    """The registry as a Markdown table (generated into docs/features.md)."""
    lines = ["| feature | grain | description | formula | source |", "|---|---|---|---|---|"]
    for f in FEATURES.values():
        lines.append(f"| `{f.name}` | {f.grain} | {f.description} | `{f.formula}` | {f.source} |")
    return "\n".join(lines)
