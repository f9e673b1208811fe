"""The notes that travel with a result file: the About sheet of a workbook (and the brief's caveat).

One text says how to read a score, so a workbook forwarded on its own says what the brief says.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from recommender.bank import DataBank
from recommender.config import Config

HOW_TO_READ = (
    "A score ranks candidates within one query (an importer, a partner pair, or a country); probability is the "
    "calibrated chance, from held-out years, that the candidate turns out relevant within the model's horizon (a clear "
    "rise in the supplier's share, in the pair's matched trade, or a new comparative advantage, RCA >= 1); rank orders "
    "the whole table by probability. Products are at the bank's level: a section or HS2 code hides products the bloc "
    "does not make. Past trade is evidence of capability, not a forecast of policy.")


def bank_sources(bank: DataBank) -> list[tuple[str, str]]:
    """One (item, text) per source of the bank: table, file, format and years."""
    rows = []
    for s in bank.sources:
        years = f"{min(s['years'])}–{max(s['years'])}" if s.get("years") else "all years"
        rows.append((f"source: {s['table']}", f"{Path(s['path']).name} ({s.get('format', '')}, {years})"))
    return rows


def about_rows(cfg: Config, bank: DataBank, *, model_versions: Iterable[str] = (), year: int | None = None,
               extra: Iterable[tuple[str, str]] = ()) -> list[tuple[str, str]]:
    """The About sheet: bloc, model version(s), the year of the features, extra items, data sources, how to read."""
    rows = [("bloc", f"{cfg.bloc.name} ({', '.join(cfg.bloc.members)})")]
    rows += [("model version", v) for v in model_versions if v]
    if year is not None:
        rows.append(("features of year", str(year)))
    rows += list(extra)
    rows += bank_sources(bank)
    rows.append(("how to read the score", HOW_TO_READ))
    return rows
