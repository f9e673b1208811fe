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
    """alpha-3 → the name people use: pycountry's common name where it has one ("Iran", "South Korea"), else its name."""
    return {c.alpha_3: getattr(c, "common_name", None) or c.name for c in pycountry.countries}


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


# --- countries as people write them -------------------------------------------------------------

#: Names in common use that pycountry's names do not reach (World Bank / UN / everyday spellings).
NAME_ALIASES: dict[str, str] = {
    "russia": "RUS", "iran": "IRN", "turkey": "TUR", "vietnam": "VNM", "korea rep": "KOR", "south korea": "KOR",
    "north korea": "PRK", "korea dem people s rep": "PRK", "lao pdr": "LAO", "venezuela rb": "VEN", "venezuela": "VEN",
    "hong kong sar china": "HKG", "china hong kong sar": "HKG", "hong kong": "HKG", "macao sar china": "MAC",
    "china macao sar": "MAC", "usa": "USA", "us": "USA", "united states": "USA", "uk": "GBR", "great britain": "GBR",
    "britain": "GBR", "uae": "ARE", "emirates": "ARE", "syria": "SYR", "taiwan": "TWN", "chinese taipei": "TWN",
    "macedonia": "MKD", "north macedonia": "MKD", "moldova": "MDA", "czech republic": "CZE", "ivory coast": "CIV",
    "burma": "MMR", "swaziland": "SWZ", "cape verde": "CPV", "east timor": "TLS", "holland": "NLD",
    "egypt arab rep": "EGY", "yemen rep": "YEM", "gambia": "GMB", "bahamas": "BHS", "kyrgyz republic": "KGZ",
    "slovak republic": "SVK", "soviet union": "SUN", "ussr": "SUN", "yugoslavia": "YUG", "czechoslovakia": "CSK",
    "east germany": "DDR", "west germany": "DEU", "belgium luxembourg": "BLX", "other asia nes": "S19",
}
_ABBREVIATIONS = {"rep": "republic", "dem": "democratic", "st": "saint", "ste": "sainte", "fed": "federated",
                  "sts": "states", "is": "islands", "isl": "islands", "pdr": "pdr", "sar": "sar"}
_STOPWORDS = frozenset({"of", "the", "and"})


def _words(text: str) -> str:
    """Lower-case ASCII words: accents removed, punctuation a space, abbreviations spelt out, no of/the/and."""
    import unicodedata

    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower().replace("&", " and ")
    words = "".join(ch if ch.isalnum() else " " for ch in text).split()
    return " ".join(_ABBREVIATIONS.get(w, w) for w in words if w not in _STOPWORDS)


def name_keys(name: str) -> set[str]:
    """The normalised forms of a country name: as written, with a parenthesis dropped or moved to the
    front ("Iran (Islamic Republic of)"), and with "X, Y" read as "Y X" ("Korea, Rep." → "Rep. Korea")."""
    forms = {name}
    if "(" in name and ")" in name:
        head, _, rest = name.partition("(")
        inner = rest.partition(")")[0]
        forms |= {head, f"{inner} {head}"}
    for form in list(forms):
        if "," in form:
            first, _, second = form.partition(",")
            forms.add(f"{second} {first}")
    return {w for w in map(_words, forms) if w}


@cache
def name_index() -> dict[str, frozenset[str]]:
    """Normalised name → the codes it names: pycountry's names, official and common names (current
    countries first, then withdrawn ones for names no current country has), the extra codes, aliases."""
    index: dict[str, set[str]] = {}
    for group in (pycountry.countries, pycountry.historic_countries):
        taken = set(index)
        for c in group:
            for attr in ("name", "official_name", "common_name"):
                for key in name_keys(getattr(c, attr, "") or ""):
                    if key not in taken:
                        index.setdefault(key, set()).add(c.alpha_3)
    for code, name in EXTRA_CODES.items():
        for key in name_keys(name):
            index.setdefault(key, set()).add(code)
    for alias, code in NAME_ALIASES.items():
        index[_words(alias)] = {code}
    return {k: frozenset(v) for k, v in index.items()}


@cache
def lookup(text: str) -> tuple[str, str]:
    """``(iso3, how)`` for a country as a person writes it, ``how`` being ``code``, ``numeric`` or ``by-name``.

    Accepted: ISO 3166 alpha-3 codes (and :data:`ALIASES`), ISO numeric codes (BACI's too), and names
    in English as the UN, the World Bank and pycountry write them ("Russian Federation", "Iran (Islamic
    Republic of)", "Türkiye", "Korea, Rep."), matched exactly on :func:`name_keys`, then by fuzzy search
    (rapidfuzz WRatio ≥ 90, three points clear of the next country). Raises :class:`LookupError` with
    the closest names when the text is unknown or ambiguous.
    """
    raw = text.strip()
    code = canonical(raw, numeric=True)
    if code in known_codes():
        return code, "numeric" if raw.isdigit() else "code"
    index = name_index()
    found = set().union(*(index.get(k, frozenset()) for k in name_keys(raw)))
    if len(found) == 1:
        return next(iter(found)), "by-name"
    from rapidfuzz import fuzz, process

    keys = list(index)
    hits = process.extract(_words(raw), keys, scorer=fuzz.WRatio, limit=12)
    best: dict[str, float] = {}
    for key, score, _ in hits:
        for c in index[key]:
            best[c] = max(best.get(c, 0.0), score)
    ranked = sorted(best.items(), key=lambda kv: -kv[1])
    if found:  # a name shared by several countries
        ranked = [(c, 100.0) for c in sorted(found)]
    elif ranked and ranked[0][1] >= 90 and (len(ranked) == 1 or ranked[0][1] - ranked[1][1] >= 3):
        return ranked[0][0], "by-name"
    ambiguous = bool(found) or bool(ranked and ranked[0][1] >= 90)
    shown = [c for c, s in ranked if s >= ranked[0][1] - 10][:5] if ambiguous else [c for c, _ in ranked[:3]]
    listed = ", ".join(f"{c} ({country_name(c)})" for c in shown) or "none"
    kind = "ambiguous" if ambiguous else "unknown"
    raise LookupError(f"{kind} country {raw!r}: closest {listed}; write the ISO3 code or the full name")
