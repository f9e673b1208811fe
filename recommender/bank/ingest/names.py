"""Product names: a table of code → name (HS2, HS4, HS6 or sections), ingested with the trade data.

Any table with a code column and a name column works, e.g. the Harmonized System nomenclature
published by the UN Statistics Division or the World Customs Organization, or the HS4 table of
the Atlas of Economic Complexity (``hs4``, ``name``). Labels then use the product's own name, or
its HS4, then HS2, heading (:func:`features.sectors.product_label`). Replacing the names needs
``--replace``; the table is replaced whole.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from recommender.bank import DataBank
from recommender.bank.ingest.common import IngestResult, reading_errors, resolve_columns
from recommender.bank.ingest.publish import open_source, publish
from recommender.errors import DataValidationError, Problem, ProblemCollector
from recommender.tables import read_frame, read_header

NAME_ALIASES: dict[str, list[str]] = {
    "product": ["product", "code", "hs6", "hs4", "hs2", "section_code", "hs_code"],
    "name": ["name", "description", "product_name", "short_name", "label"],
}
SCHEMA = pa.schema([("product", pa.string()), ("name", pa.string())])


def validated_names(path: Path, columns: dict[str, str] | None = None, *, source: str | None = None,
                    pad: bool = False, sheet: str | None = None) -> pa.Table:
    """A code → name table checked row by row (codes digits, names present, no code twice) as ``product, name``.

    ``pad`` restores leading zeros of odd-length codes (a BACI release writes ``10121`` for ``010121``).
    """
    source = source or str(path)
    found = resolve_columns(read_header(path, sheet=sheet), NAME_ALIASES, dict(columns or {}), required=["product", "name"],
                            source=source)
    raw = read_frame(path, list(dict.fromkeys(found.values())), sheet=sheet, codes=[found["product"]])
    product, name = raw[found["product"]].str.strip(), raw[found["name"]].str.strip()
    if pad:
        product = product.where(product.str.len() % 2 == 0, "0" + product)
    problems = ProblemCollector()
    problems.add_mask("product code missing", product.isna().to_numpy(), 0)
    problems.add_mask("product code is not digits (codes are text: keep leading zeros)",
                      (product.notna() & ~product.fillna("").str.fullmatch(r"\d{2,6}")).to_numpy(), 0)
    problems.add_mask("name missing", (name.isna() | name.eq("")).to_numpy(), 0)
    problems.add_mask("duplicate product code", (product.notna() & product.duplicated()).to_numpy(), 0)
    if raw.empty:
        raise DataValidationError(source, [Problem("the file has no rows: an empty file is never a valid source", count=0)])
    if problems:
        raise DataValidationError(source, problems.problems)
    return pa.Table.from_pydict({"product": product.tolist(), "name": name.tolist()}, schema=SCHEMA)


@reading_errors
def ingest_product_names(bank: DataBank, path: str | Path, *, columns: dict[str, str] | None = None,
                         replace: bool = False, sheet: str | None = None) -> IngestResult:
    """Validate a code → name table and make it the bank's ``product_names`` (all or nothing)."""
    columns = dict(columns or {})
    source = open_source(bank, path, table="product_names", format="names", formats=("names",),
                         options={"columns": columns, **({"sheet": sheet} if sheet else {})})
    if isinstance(source, IngestResult):
        return source
    table = validated_names(source.path, columns, sheet=sheet)
    return publish(source, lambda tx: tx.write_table("product_names", source.id, table), rows=len(table), replace=replace)
