"""Workbooks in and out: one sheet of ``.xlsx``/``.xls``/``.ods`` read as text, formatted ``.xlsx`` written.

**Reading** uses calamine (``python-calamine``), a Rust reader of every Excel and OpenDocument
format: about ten times faster than openpyxl on large sheets, read-only, no formula engine. A sheet
becomes an Arrow table of text columns, as a CSV does (:mod:`recommender.tables`): numbers become
their shortest exact text (``2010``, not ``2010.0``), booleans ``TRUE``/``FALSE``, dates ISO text,
empty cells missing. The rules a person's workbook is held to, each failure naming the sheet and
the cell:

* the sheet: ``sheet`` by name, else the only visible sheet with data (a sheet named ``About``,
  the notes sheet this project writes, does not count); several → an error naming them;
* the header is the sheet's first row, one named cell per column, none merged, none repeated;
* in the columns that hold codes (``codes``), no dates and no formulas: a spreadsheet that turned
  ``01.10`` into a date, or computes a code, has lost what the analyst typed;
* an encrypted (password-protected) workbook is refused before parsing.

**Writing** uses xlsxwriter in constant-memory mode: a frozen, filtered header row, fitted column
widths, probabilities and shares as percentages, USD with thousands separators, every text cell
written as text (never a formula) and, as in CSV, prefixed with ``'`` when a spreadsheet would run
it (:func:`recommender.outputs.writers.neutralise_formulas` is applied by the caller).
"""

from __future__ import annotations

import datetime as dt
import re
import zipfile
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pandas as pd
import pyarrow as pa

from recommender.errors import DataValidationError, Problem

WORKBOOK_SUFFIXES = frozenset({".xlsx", ".xlsm", ".xlsb", ".xls", ".ods"})
NOTES_SHEET = "About"
"""The sheet of notes this project writes last in every workbook; never taken as data."""
MAX_ROWS = 1_048_575
"""Data rows an .xlsx sheet holds under its header (Excel's limit is 1,048,576 rows)."""
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_DATES = (dt.date, dt.datetime, dt.time, dt.timedelta)


def is_workbook(path: str | Path) -> bool:
    return Path(path).suffix.lower() in WORKBOOK_SUFFIXES


def column_letter(index: int) -> str:
    """0 → ``A``, 25 → ``Z``, 26 → ``AA``: the spreadsheet's name of a column."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _refuse(where: str, reason: str, hint: str) -> DataValidationError:
    return DataValidationError(where, [Problem(reason, count=0)], hint=hint)


def _open(path: Path):
    import python_calamine as calamine

    with open(path, "rb") as f:
        head = f.read(8)
    if head == _OLE_MAGIC and path.suffix.lower() in {".xlsx", ".xlsm", ".xlsb"}:  # OOXML inside OLE: encrypted
        raise _refuse(str(path), "the workbook is encrypted (password-protected)",
                      "open it in Excel, remove the password (File → Info → Protect Workbook) and save a copy")
    try:
        return calamine.CalamineWorkbook.from_path(str(path))
    except calamine.PasswordError as exc:
        raise _refuse(str(path), "the workbook is encrypted (password-protected)",
                      "remove the password and save a copy") from exc
    except (calamine.CalamineError, ValueError, OSError) as exc:
        raise _refuse(str(path), f"not a readable workbook ({type(exc).__name__}: {exc})",
                      "save it again from Excel or LibreOffice as .xlsx, or export the sheet as CSV") from exc


def _choose(book, path: Path, sheet: str | None) -> str:
    names = list(book.sheet_names)
    if sheet is not None:
        if sheet not in names:
            raise _refuse(str(path), f"no sheet named {sheet!r}; the workbook has {', '.join(map(repr, names))}",
                          "give one of these to --sheet (names are case-sensitive)")
        return sheet
    import python_calamine as calamine

    visible = [m.name for m in book.sheets_metadata
               if m.visible == calamine.SheetVisibleEnum.Visible and m.typ == calamine.SheetTypeEnum.WorkSheet]
    with_data = [n for n in visible if n != NOTES_SHEET and book.get_sheet_by_name(n).height > 0]
    if not with_data:
        raise _refuse(str(path), "no visible sheet has data", "put the table on the first sheet, header in row 1")
    if len(with_data) > 1:
        raise _refuse(str(path), f"{len(with_data)} sheets have data: {', '.join(map(repr, with_data))}",
                      f"choose one with --sheet NAME (e.g. --sheet {with_data[0]!r})")
    return with_data[0]


def source_label(path: str | Path, sheet: str | None = None) -> str:
    """How messages name a workbook's table: ``"<path>, sheet 'Projects'"`` (the sheet :func:`read_sheet` reads)."""
    path = Path(path)
    return f"{path}, sheet {_choose(_open(path), path, sheet)!r}"


def _text(value) -> str | None:
    """A cell as text: what a CSV of the sheet would hold."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, _DATES):
        return value.isoformat() if not isinstance(value, dt.timedelta) else str(value)
    return str(value)


def _formula_cells(path: Path, sheet: str) -> list[tuple[int, int]]:
    """(row, column), 0-based, of the cells of an .xlsx/.xlsm sheet that hold a formula.

    calamine returns a formula's cached value; the formula itself is in the sheet's XML
    (``<c r="B7"><f>…</f>``): the workbook's relationships name the sheet's part.
    """
    if path.suffix.lower() not in {".xlsx", ".xlsm"}:
        return []
    ns = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main",
          "r": "http://schemas.openxmlformats.org/officeDocument/2006/relationships"}
    with zipfile.ZipFile(path) as z:
        book = ElementTree.fromstring(z.read("xl/workbook.xml"))
        rels = ElementTree.fromstring(z.read("xl/_rels/workbook.xml.rels"))
        rid = next((s.get(f"{{{ns['r']}}}id") for s in book.iterfind("m:sheets/m:sheet", ns) if s.get("name") == sheet), None)
        target = next((r.get("Target") for r in rels if r.get("Id") == rid), None)
        if target is None:
            return []
        part = target.lstrip("/") if target.startswith("/") else f"xl/{target}"
        xml = z.read(part).decode("utf-8", "replace")
    cells = []
    for m in re.finditer(r'<c r="([A-Z]+)(\d+)"[^>]*>\s*<f\b', xml):
        col = 0
        for ch in m.group(1):
            col = col * 26 + ord(ch) - 64
        cells.append((int(m.group(2)) - 1, col - 1))
    return cells


def read_sheet(path: str | Path, sheet: str | None = None, *, codes: Sequence[str] = ()) -> pa.Table:
    """One sheet as an Arrow table of text columns (see the module docstring for the rules).

    Parsed once per file version and arguments (a small cache): reading the header and then the
    rows costs one parse.
    """
    path = Path(path)
    stat = path.stat()
    return _read_sheet(str(path), stat.st_mtime_ns, stat.st_size, sheet, tuple(codes))


@lru_cache(maxsize=4)
def _read_sheet(path_text: str, _mtime: int, _size: int, sheet: str | None, codes: tuple[str, ...]) -> pa.Table:
    path = Path(path_text)
    book = _open(path)
    name = _choose(book, path, sheet)
    where = f"{path}, sheet {name!r}"
    grid = book.get_sheet_by_name(name)
    rows = grid.to_python(skip_empty_area=False)
    filled = [j for row in rows for j, v in enumerate(row) if v not in ("", None)]
    if not filled:
        raise _refuse(where, "the sheet is empty", "put the table on this sheet, its header in row 1")
    first, width = min(filled), max(filled) + 1
    header = [rows[0][j] if rows and j < len(rows[0]) else "" for j in range(first, width)]
    for (r0, c0), (r1, c1) in grid.merged_cell_ranges or []:
        if r0 == 0:
            raise _refuse(where, f"header cells {column_letter(c0)}{r0 + 1}:{column_letter(c1)}{r1 + 1} are merged",
                          "unmerge them and give each column its own name in row 1")
    empty = [first + j for j, v in enumerate(header) if v in ("", None)]
    if empty:
        later = next((i for i, row in enumerate(rows[1:21], start=1)
                      if all(isinstance(row[j], str) and row[j].strip() for j in range(first, min(width, len(row))))
                      and len(row) >= width), None)
        if later is not None:
            raise _refuse(where, f"the header is on row {later + 1}, not row 1 (row 1 has "
                                 f"{'no names' if len(empty) == len(header) else 'empty cells at ' + ', '.join(column_letter(j) + '1' for j in empty[:5])})",
                          f"delete rows 1–{later} (titles and notes belong on another sheet) so the header is row 1")
        raise _refuse(where, f"header cell(s) {', '.join(column_letter(j) + '1' for j in empty[:5])} empty",
                      "give every column a name in row 1")
    names = [_text(v) or "" for v in header]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise _refuse(where, f"column name(s) {repeated} appear more than once in row 1", "give each column one name")
    body = rows[1:]
    while body and all(v in ("", None) for v in body[-1]):
        body.pop()
    code_cols = {first + j: n for j, n in enumerate(names) if n in codes}
    problems: list[Problem] = []
    for j, n in code_cols.items():
        dated = [i for i, row in enumerate(body) if j < len(row) and isinstance(row[j], _DATES)]
        if dated:
            cells = ", ".join(f"{column_letter(j)}{i + 2}" for i in dated[:5])
            problems.append(Problem(f"column {n!r} ({column_letter(j)}) holds dates where codes belong (cells {cells})",
                                    rows=dated[:20], count=len(dated)))
        for (r0, c0), (r1, c1) in grid.merged_cell_ranges or []:
            if c0 <= j <= c1 and r1 >= 1:
                problems.append(Problem(f"column {n!r} has merged cells {column_letter(c0)}{r0 + 1}:{column_letter(c1)}{r1 + 1}: "
                                        "each row needs its own code", count=0))
    if code_cols:
        formulas = [(r, c) for r, c in _formula_cells(path, name) if c in code_cols and r >= 1]
        for j, n in code_cols.items():
            at = [r for r, c in formulas if c == j]
            if at:
                cells = ", ".join(f"{column_letter(j)}{r + 1}" for r in at[:5])
                problems.append(Problem(f"column {n!r} ({column_letter(j)}) holds formulas where codes belong (cells {cells})",
                                        rows=[r - 1 for r in at[:20]], count=len(at)))
    if problems:
        raise DataValidationError(where, problems, hint="format code columns as Text and type (or Paste Special → Values) "
                                                        "the codes themselves")
    columns = {n: pa.array([_text(row[j]) if j < len(row) else None for row in body], pa.string())
               for j, n in zip(range(first, width), names, strict=True)}
    return pa.table(columns)


# --- writing ------------------------------------------------------------------------------------

def column_format(name: str) -> dict:
    """The cell format of a result column, by its name: percentages, USD, scores, ranks."""
    if name in {"probability", "partner_share"} or name.endswith(("_share", "_probability")):
        return {"num_format": "0.0%"}
    if name.endswith("_usd") or name in {"value_usd", "market_usd"}:
        return {"num_format": "#,##0"}
    if name in {"score", "partner_rca", "rca"} or name.endswith("_rca"):
        return {"num_format": "0.000"}
    if name == "percentile":
        return {"num_format": "0.00"}
    return {}


def _width(name: str, values: pd.Series, fmt: dict) -> float:
    sample = values.head(2000)
    if fmt.get("num_format") == "#,##0":
        longest = max((len(f"{v:,.0f}") for v in sample.dropna() if isinstance(v, int | float)), default=0)
    elif fmt:
        longest = 8
    else:
        longest = int(sample.dropna().astype(str).str.len().quantile(0.95)) if sample.notna().any() else 0
    return float(min(max(len(str(name)) + 2, longest + 2, 6), 60))


def write_workbook(path: str | Path, sheets: Sequence[tuple[str, pd.DataFrame]],
                   about: Sequence[tuple[str, str]]) -> None:
    """Write ``sheets`` (name, table) and a last sheet ``About`` (item, text) to an .xlsx at ``path``.

    Text cells are written as text (never run as formulas, links or numbers); missing cells stay
    empty; each sheet has its header frozen and filtered, widths fitted and number formats by
    column (:func:`column_format`). A sheet over :data:`MAX_ROWS` rows is refused before writing.
    """
    import xlsxwriter

    for name, frame in sheets:
        if len(frame) > MAX_ROWS:
            raise ValueError(f"sheet {name!r}: {len(frame):,} rows do not fit an .xlsx sheet ({MAX_ROWS:,} at most); "
                             "write .csv or .parquet instead")
    book = xlsxwriter.Workbook(str(path), {"constant_memory": True, "strings_to_formulas": False,
                                           "strings_to_urls": False, "strings_to_numbers": False,
                                           "nan_inf_to_errors": False})
    try:
        bold = book.add_format({"bold": True, "bg_color": "#EEF3F7", "bottom": 1})
        wrap = book.add_format({"text_wrap": True, "valign": "top"})
        for name, frame in [*sheets, (NOTES_SHEET, pd.DataFrame(about, columns=["item", "value"]))]:
            ws = book.add_worksheet(name[:31])
            for j, col in enumerate(frame.columns):
                fmt = column_format(str(col)) if name != NOTES_SHEET else {}
                width = _width(str(col), frame[col], fmt) if name != NOTES_SHEET else (28 if j == 0 else 110)
                ws.set_column(j, j, width, book.add_format(fmt) if fmt else (wrap if name == NOTES_SHEET and j else None))
            ws.write_row(0, 0, [str(c) for c in frame.columns], bold)
            ws.freeze_panes(1, 0)
            if len(frame.columns):
                ws.autofilter(0, 0, max(len(frame), 1), len(frame.columns) - 1)
            values = frame.astype(object).where(frame.notna(), None).to_numpy()
            for i, row in enumerate(values, start=1):
                for j, v in enumerate(row):
                    if v is None:
                        continue
                    if isinstance(v, str):
                        ws.write_string(i, j, v)
                    elif isinstance(v, bool | np.bool_):
                        ws.write_boolean(i, j, bool(v))
                    elif isinstance(v, int | float | np.integer | np.floating):
                        if np.isfinite(v):
                            ws.write_number(i, j, float(v))
                    else:
                        ws.write_string(i, j, str(v))
    finally:
        book.close()
