"""UN Comtrade bulk/API CSVs: reported exports become exporter → partner flows; aggregates are dropped and counted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa

from recommender import countries
from recommender.bank.ingest.common import (
    COMTRADE_ALIASES,
    resolve_columns,
)
from recommender.bank.ingest.tidy import table_from_frame
from recommender.tables import read_frames, read_header


def read_comtrade(path: Path, *, columns: dict[str, str], dropped: dict[str, int]) -> Iterator[pa.Table]:
    """UN Comtrade bulk or API CSV: keeps reported exports (flow X) as exporter → partner flows.

    Partner aggregates (World, areas n.e.s.) and, when present, sub-totals by customs procedure,
    mode of transport or second partner other than the totals are dropped and counted.
    """
    header = read_header(path)
    found = resolve_columns(header, COMTRADE_ALIASES, columns,
                            required=["year", "flow", "reporter", "partner", "product", "value_usd"], source=str(path))
    extra = {c: v for c, v in {"customsCode": "C00", "motCode": "0", "partner2Code": "0"}.items() if c in header}
    usecols = list(dict.fromkeys(list(found.values()) + list(extra)))

    def drop(reason: str, mask: pd.Series) -> None:
        dropped[reason] = dropped.get(reason, 0) + int(mask.sum())

    for chunk in read_frames(path, usecols):
        flow = chunk[found["flow"]].fillna("").str.strip().str.upper()
        keep = flow.isin(["X", "2", "EXPORT", "EXPORTS"])
        drop("non-export flows", ~keep)
        for col, total in extra.items():
            sub = chunk[col].fillna("").str.strip() != total
            drop(f"{col} sub-totals", keep & sub)
            keep &= ~sub
        partner = chunk[found["partner"]].fillna("").str.strip().str.upper()
        aggregate = partner.isin(countries.AGGREGATES) | partner.isin(["WORLD", "0"])
        drop("partner aggregates (World, areas n.e.s.)", keep & aggregate)
        keep &= ~aggregate
        product = chunk[found["product"]].fillna("").str.strip()
        total = product.str.upper().isin(["TOTAL", "ALL", "AG2", "AG4", "AG6"])
        drop("product totals", keep & total)
        keep &= ~total
        sub = chunk[keep]
        frame = pd.DataFrame({
            "year": sub[found["year"]].str.strip().str[:4],
            "exporter": sub[found["reporter"]],
            "importer": sub[found["partner"]],
            "product": sub[found["product"]].str.strip(),
            "value_usd": sub[found["value_usd"]],
        })
        if "quantity" in found:
            frame["quantity"] = sub[found["quantity"]]
        yield table_from_frame(frame.reset_index(drop=True))
