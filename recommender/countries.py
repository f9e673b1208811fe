"""Country codes: ISO 3166 alpha-3 validation, numeric → alpha-3, aliases seen in real data.

Accepted codes are current ISO 3166-1 alpha-3 codes, withdrawn ISO 3166-3 codes (ANT, SCG,
YUG, CSK, SUN, DDR, ...) kept as they are, and the few non-ISO codes that trade statistics
use. Aliases map non-standard codes to ISO: ``ROM`` (Romania before 2002 in UN data) → ``ROU``,
``ZAR`` → ``COD``, ``TMP`` → ``TLS``.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

import pandas as pd
import pycountry

#: Non-standard alpha-3 codes seen in real data → ISO 3166-1 alpha-3.
ALIASES: dict[str, str] = {"ROM": "ROU", "ZAR": "COD", "TMP": "TLS"}

#: Codes used by trade statistics that are not in ISO 3166 but denote real reporters.
EXTRA_CODES: dict[str, str] = {
    "BLX": "Belgium-Luxembourg",
    "S19": "Other Asia, nes",
    "XKX": "Kosovo",
}

#: Numeric codes used by CEPII BACI / UN Comtrade that differ from ISO 3166 numeric.
BACI_NUMERIC: dict[int, str] = {
    58: "BLX",  # Belgium-Luxembourg
    251: "FRA",  # France incl. Monaco
    490: "S19",  # Other Asia, nes (Taiwan)
    579: "NOR",  # Norway incl. Svalbard
    699: "IND",  # India (BACI)
    711: "ZAF",  # Southern African Customs Union
    757: "CHE",  # Switzerland incl. Liechtenstein
    842: "USA",  # USA incl. Puerto Rico and US Virgin Islands
    891: "SCG",  # Serbia and Montenegro
    530: "ANT",  # Netherlands Antilles
}

#: Partner codes that are aggregates, not countries (dropped from Comtrade files and counted).
AGGREGATES: frozenset[str] = frozenset(
    {"WLD", "W00", "_X", "X1", "XX", "EUR", "EU2", "R4", "A79", "E19", "E29", "F19", "F49"}
)


@cache
def _current() -> dict[str, str]:
    return {c.alpha_3: c.name for c in pycountry.countries}


@cache
def _historic() -> dict[str, str]:
    return {c.alpha_3: c.name for c in pycountry.historic_countries}


@cache
def known_codes() -> frozenset[str]:
    """Every alpha-3 code the bank accepts after alias mapping."""
    return frozenset(_current()) | frozenset(_historic()) | frozenset(EXTRA_CODES)


@cache
def numeric_to_iso3() -> dict[int, str]:
    """ISO 3166 numeric → alpha-3 (current and historic), overlaid with BACI's own codes."""
    table: dict[int, str] = {}
    for c in pycountry.historic_countries:
        if getattr(c, "numeric", None):
            table[int(c.numeric)] = c.alpha_3
    for c in pycountry.countries:
        table[int(c.numeric)] = c.alpha_3
    table.update(BACI_NUMERIC)
    return table


def canonical(code: str, *, numeric: bool = False) -> str:
    """Upper-case, strip and apply :data:`ALIASES`; with ``numeric``, digits are a numeric code.

    A numeric code becomes its alpha-3 code (:func:`numeric_to_iso3`), or ``#<code>`` when it
    has none, so validation names it. The one normalisation of a country code in the project.
    """
    code = code.strip().upper()
    if numeric and code.isdigit():
        return numeric_to_iso3().get(int(code), f"#{code}")
    return ALIASES.get(code, code)


def normalise(values: pd.Series, *, numeric: bool = False) -> pd.Series:
    """:func:`canonical` of a column, computed once per distinct value; missing stays missing."""
    uniques = pd.unique(values.dropna())
    return values.map({u: canonical(str(u), numeric=numeric) for u in uniques})


def unknown_codes(codes: Iterable[str]) -> list[str]:
    """Codes (after alias mapping) that are not known; sorted."""
    known = known_codes()
    return sorted({c for c in codes if canonical(c) not in known})


def country_name(iso3: str) -> str:
    """A readable name, falling back to the code itself."""
    return _current().get(iso3) or _historic().get(iso3) or EXTRA_CODES.get(iso3) or iso3
