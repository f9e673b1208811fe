"""Importer × product features: how much an importer buys, from whom, and from outside the bloc."""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import pandas as pd

from features.columns import check_columns
from features.trade import TRADE_COLUMNS, imports


def importer_features(trade: pd.DataFrame, bloc: Collection[str]) -> pd.DataFrame:
    """One row per (year, importer, product) with imports.

    Columns:

    * ``imports`` :math:`M_{jp} = \\sum_k X_{k \\to j, p}`;
    * ``ext_imports`` :math:`M^{ext}_{jp} = \\sum_{k \\notin B} X_{k \\to j,p}` and ``ext_share``
      :math:`= M^{ext}_{jp} / M_{jp}`;
    * ``bloc_share`` — share of :math:`M_{jp}` bought from other bloc members;
    * ``supplier_hhi`` — Herfindahl–Hirschman index of supplier shares, :math:`\\sum_k s_{kjp}^2`;
    * ``n_suppliers``;
    * ``import_share`` :math:`m_{jp} = M_{jp} / \\sum_{p'} M_{jp'}`, the product's share of j's imports;
    * ``import_growth_3y`` :math:`= \\ln(1 + M_{jp,t}) - \\ln(1 + M_{jp,t-3})` (missing without t−3).
    """
    check_columns(trade, TRADE_COLUMNS, "trade")
    keys = ["year", "importer", "product"]
    v = trade["value_usd"].to_numpy(dtype=float)
    in_bloc = trade["exporter"].isin(list(bloc)).to_numpy()
    t = trade[keys].assign(ext=np.where(in_bloc, 0.0, v), bloc_v=np.where(in_bloc, v, 0.0), sq=v**2, n=1)
    parts = t.groupby(keys, as_index=False, observed=True).agg(
        ext_imports=("ext", "sum"), bloc_imports=("bloc_v", "sum"), sum_sq=("sq", "sum"), n_suppliers=("n", "sum"))
    out = imports(trade).merge(parts, on=keys, how="left", validate="one_to_one")  # M: the one definition
    out["supplier_hhi"] = out["sum_sq"] / out["imports"] ** 2  # Σ_k (X_k / M)² = Σ_k X_k² / M²
    out["ext_share"] = out["ext_imports"] / out["imports"]
    out["bloc_share"] = out["bloc_imports"] / out["imports"]
    out["import_share"] = out["imports"] / out.groupby(["year", "importer"], observed=True)["imports"].transform("sum")
    lag = out[keys + ["imports"]].assign(year=out["year"] + 3).rename(columns={"imports": "lag"})
    out = out.merge(lag, on=keys, how="left")
    out["import_growth_3y"] = np.log1p(out["imports"]) - np.log1p(out["lag"])
    return out[[*keys, "imports", "ext_imports", "supplier_hhi", "n_suppliers", "ext_share", "bloc_share", "import_share",
                "import_growth_3y"]]
