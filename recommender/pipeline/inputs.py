"""The pipeline's one door to the data bank: open it, check the bloc, choose the product level and
the year, and read the tables the outputs show (trade of a year, product codes and names).

Everything above the pipeline (outputs, the demo) reads the bank through these functions, so
what "the bank of this configuration" means is decided here once.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

import pandas as pd

from features.sectors import shipped_names
from recommender import countries
from recommender.bank import DataBank
from recommender.config import Bloc, Config
from recommender.errors import RecommenderError

TRADE_COLUMNS = ["year", "exporter", "importer", "product", "value_usd"]


def open_bank(cfg: Config) -> DataBank:
    """The data bank of ``cfg`` (a folder under the home, or a URL given by ``--bank``), for reading."""
    return DataBank(cfg.bank_dir)


def resolve_level(bank: DataBank, level: int | None) -> int:
    """``level`` checked against the bank's codes (not finer than them); by default the codes' own length."""
    return max(len(code) for code in bank.product_codes(level))


def trade_year(bank: DataBank, year: int | None) -> int:
    """``year`` if the bank has trade for it, else a clear error; by default the bank's last trade year."""
    years = bank.years("trade")
    if not years:
        raise RecommenderError(f"the data bank at {bank.root} has no trade; run `recommender demo` or ingest some")
    year = int(year) if year is not None else years[-1]
    if year not in years:
        raise RecommenderError(f"year {year} is not in the data bank (years {years[0]}–{years[-1]})")
    return year


def country_code(text: str, *, option: str = "--country") -> str:
    """The ISO3 code of a country written as a code or a name (:func:`recommender.countries.lookup`), or a clear error."""
    try:
        return countries.lookup(text)[0]
    except LookupError as exc:
        raise RecommenderError(f"{option}: {exc}") from None


def bloc_member(cfg: Config, text: str, *, option: str = "--country") -> str:
    """:func:`country_code` of ``text``, which must be a member of the bloc."""
    code = country_code(text, option=option)
    if code not in cfg.bloc.members:
        raise RecommenderError(f"{option} {text!r} ({code}) is not a member of {cfg.bloc.name} ({', '.join(cfg.bloc.members)})")
    return code


def member_and_year(cfg: Config, bank: DataBank, country: str, year: int | None, *, option: str = "--country") -> tuple[str, int]:
    """:func:`bloc_member` of ``country`` and :func:`trade_year` of ``year``."""
    return bloc_member(cfg, country, option=option), trade_year(bank, year)


def check_bloc(bank: DataBank, bloc: Bloc, log: Callable[[str], None]) -> None:
    """At least two members of ``bloc`` trade in the bank (a clear error otherwise); warn about the others."""
    present = bank.countries()
    missing = [m for m in bloc.members if m not in present]
    if len(bloc.members) - len(missing) < 2:
        raise RecommenderError(f"bloc {bloc.name}: fewer than two members ({bloc.members}) appear in the bank's trade")
    if missing:
        log(f"warning: bloc members without trade in the bank: {', '.join(missing)}")


def trade_table(bank: DataBank, years: Collection[int]) -> pd.DataFrame:
    """Every flow of ``years``: year, exporter, importer, product, value_usd."""
    return bank.read("trade", years=sorted(years), columns=TRADE_COLUMNS)


def product_codes(bank: DataBank) -> list[str]:
    """The bank's product codes, sorted ([] before any trade is ingested)."""
    return sorted(bank.read("products", columns=["product"])["product"]) if bank.has("products") else []


def product_names(bank: DataBank, *, shipped: bool = True) -> dict[str, str]:
    """Product code → name: the bank's ``product_names`` table (``recommender ingest products``) over, with
    ``shipped``, the HS names shipped with the project for the bank's codes (:func:`features.sectors.shipped_names`;
    HS banks only: a bank of sections is named by the project's section names)."""
    names = shipped_names(product_codes(bank)) if shipped and bank.classification == "hs" else {}
    if bank.has("product_names"):
        own = bank.read("product_names")
        names.update(zip(own["product"], own["name"], strict=True))
    return names
