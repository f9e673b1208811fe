"""Production-capacity features by country and sector, from national accounts and PWT-like data.

Sectors are ISIC aggregates (``A-B``, ``C-E``, ``D``, ...) or INDSTAT divisions; a product's
sector comes from :mod:`features.sectors`. Missing capacity stays missing (LightGBM handles it):
no value is invented.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.columns import check_columns

CAPITAL_INDICATORS = {"rnna": 1e6, "capital_stock": 1.0}
"""Capital-stock indicators in USD, with the factor to USD: PWT ``rnna`` is in millions of 2017 USD. PWT ``rkna``
is an index (2017 = 1) of each country's own stock, which does not compare countries, so it is not used."""
EMPLOYMENT_INDICATORS = ("emp", "employment", "employees")


def _first_available(cap: pd.DataFrame, names: tuple[str, ...] | dict[str, float], value_name: str) -> pd.DataFrame:
    """The economy-wide values of the first of ``names`` the table has (one indicator for every country, so one
    unit), times its factor when ``names`` maps indicators to factors."""
    for name in names:
        rows = cap[(cap["indicator"] == name) & (cap["sector"] == "TOTAL")]
        if not rows.empty:
            out = rows[["year", "country", "value"]].rename(columns={"value": value_name})
            if isinstance(names, dict):
                out[value_name] = out[value_name] * names[name]
            return out
    # none reported (e.g. no Penn World Table in the bank): a typed empty table, so the merged column is float NaN
    return pd.DataFrame({"year": pd.Series(dtype="int64"), "country": pd.Series(dtype="str"), value_name: pd.Series(dtype="float64")})


def capacity_features(capacity: pd.DataFrame) -> pd.DataFrame:
    """One row per (year, country, sector) with:

    * ``va_sector`` — value added of the sector (USD);
    * ``va_share_gdp`` — ``va_sector / gdp``;
    * ``va_growth_5y`` — :math:`\\ln(VA_t / VA_{t-5})` (missing without t−5 or for non-positive values);
    * ``gdp``, ``capital_stock`` (USD: PWT ``rnna`` × 10⁶, else a ``capital_stock`` indicator in USD) and
      ``employment`` (PWT ``emp``, millions),
      economy-wide, repeated for each sector.
    """
    check_columns(capacity, ["year", "country", "sector", "indicator", "value"], "capacity")
    va = capacity[(capacity["indicator"] == "value_added") & (capacity["sector"] != "TOTAL")]
    va = va[["year", "country", "sector", "value"]].rename(columns={"value": "va_sector"})
    lag = va.assign(year=va["year"] + 5).rename(columns={"va_sector": "lag"})
    va = va.merge(lag, on=["year", "country", "sector"], how="left")
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = va["va_sector"] / va["lag"]
        va["va_growth_5y"] = np.where(ratio > 0, np.log(ratio.where(ratio > 0, 1.0)), np.nan)
    va = va.drop(columns="lag")
    gdp = _first_available(capacity, ("gdp",), "gdp")
    out = va.merge(gdp, on=["year", "country"], how="left")
    out["va_share_gdp"] = out["va_sector"] / out["gdp"]
    out = out.merge(_first_available(capacity, CAPITAL_INDICATORS, "capital_stock"), on=["year", "country"], how="left")
    out = out.merge(_first_available(capacity, EMPLOYMENT_INDICATORS, "employment"), on=["year", "country"], how="left")
    return out
