"""Workbooks in and out (recommender.workbooks): the sheet rules a person's workbook is held to, and
the formatted .xlsx the outputs write, read back cell by cell."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
import xlsxwriter

from recommender.errors import DataValidationError
from recommender.outputs.writers import write_table
from recommender.tables import read_frame, read_header


def _book(path, sheets):
    book = xlsxwriter.Workbook(str(path))
    for name, rows in sheets.items():
        ws = book.add_worksheet(name)
        for i, row in enumerate(rows):
            for j, v in enumerate(row):
                if isinstance(v, dt.date):
                    ws.write_datetime(i, j, dt.datetime.combine(v, dt.time()), book.add_format({"num_format": "yyyy-mm-dd"}))
                elif isinstance(v, str) and v.startswith("="):
                    ws.write_formula(i, j, v)
                elif v is not None:
                    ws.write(i, j, v)
    book.close()
    return path


def test_a_sheet_reads_as_text_like_a_csv(tmp_path):
    path = _book(tmp_path / "p.xlsx", {"Projects": [["importer", "product", "value"], ["Kazakhstan", "0101", 2010],
                                                    ["IRN", 870323, 1.5], [None, None, None]]})
    assert read_header(path) == ["importer", "product", "value"]
    frame = read_frame(path)
    assert frame["product"].tolist() == ["0101", "870323"]  # text kept, numbers as their exact text, no trailing row
    assert frame["value"].tolist() == ["2010", "1.5"]


def test_sheet_choice(tmp_path):
    path = _book(tmp_path / "two.xlsx", {"A": [["x"], [1]], "B": [["y"], [2]], "Empty": []})
    with pytest.raises(DataValidationError, match="(?s)2 sheets have data: 'A', 'B'.*--sheet"):
        read_header(path)
    assert read_header(path, sheet="B") == ["y"]
    with pytest.raises(DataValidationError, match="no sheet named 'C'"):
        read_header(path, sheet="C")


@pytest.mark.parametrize(("rows", "message"), [
    ([["Proposals for 2025"], [], ["importer", "product"], ["KAZ", "0101"]], "the header is on row 3, not row 1"),
    ([["importer", None, "product"], ["KAZ", 1, "0101"]], "header cell.*B1 empty"),
    ([], "the sheet is empty"),
])
def test_bad_headers_name_the_cell(tmp_path, rows, message):
    path = _book(tmp_path / "bad.xlsx", {"S": rows or [[None]]})
    with pytest.raises(DataValidationError, match=message):
        read_header(path, sheet="S")


def test_merged_header_is_refused(tmp_path):
    book = xlsxwriter.Workbook(str(tmp_path / "m.xlsx"))
    ws = book.add_worksheet("S")
    ws.merge_range(0, 0, 0, 1, "importer")
    ws.write_row(1, 0, ["KAZ", "0101"])
    book.close()
    with pytest.raises(DataValidationError, match="header cells A1:B1 are merged"):
        read_header(tmp_path / "m.xlsx")


def test_dates_and_formulas_where_codes_belong(tmp_path):
    path = _book(tmp_path / "d.xlsx", {"S": [["importer", "product"], ["KAZ", dt.date(2024, 1, 5)], ["KAZ", '="01"&"01"']]})
    with pytest.raises(DataValidationError) as err:
        read_frame(path, codes=["importer", "product"])
    text = str(err.value)
    assert "holds dates where codes belong (cells B2)" in text and "holds formulas where codes belong (cells B3)" in text
    assert "sheet 'S'" in text
    assert len(read_frame(path)) == 2  # outside code columns, dates and formulas' values are read


def test_encrypted_workbook(tmp_path):
    msoffcrypto = pytest.importorskip("msoffcrypto")
    from msoffcrypto.format.ooxml import OOXMLFile

    plain = _book(tmp_path / "plain.xlsx", {"S": [["x"], [1]]})
    with open(plain, "rb") as f, open(tmp_path / "secret.xlsx", "wb") as out:
        OOXMLFile(f).encrypt("pw", out)
    assert msoffcrypto
    with pytest.raises(DataValidationError, match="encrypted"):
        read_header(tmp_path / "secret.xlsx")


def test_written_workbook_reads_back_cell_by_cell(tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    frame = pd.DataFrame({"importer": ["KAZ", "=HYPERLINK(\"x\")"], "product": ["0101", "8703"],
                          "probability": [0.1234, None], "market_usd": [1234567.0, 2.0]})
    path = write_table(frame, tmp_path / "out.xlsx", sheet="import-substitution", about=[("model version", "m v3")])
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["import-substitution", "About"]
    ws = book["import-substitution"]
    assert ws.freeze_panes == "A2"
    assert [c.value for c in ws[1]] == ["importer", "product", "probability", "market_usd"]
    assert ws["A3"].value == "'=HYPERLINK(\"x\")" and ws["A3"].data_type == "s"  # text, neutralised as in CSV
    assert ws["B2"].value == "0101"
    assert ws["C2"].value == pytest.approx(0.1234) and ws["C2"].number_format == "0.0%"
    assert ws["C3"].value is None
    assert ws["D2"].number_format == "#,##0"
    assert book["About"]["B2"].value == "m v3"
    assert read_frame(path)["product"].tolist() == ["0101", "8703"]  # our own workbook reads back (About skipped)


def _cli(monkeypatch, capsys, home, *args) -> tuple[int, str]:
    import sys

    from recommender.cli import main

    monkeypatch.setattr(sys, "argv", ["recommender", "--home", str(home), *map(str, args)])
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return code, " ".join((captured.err + captured.out).split())


def test_a_workbook_of_names_and_codes_at_three_levels_is_scored_to_a_workbook(pipeline_home, tmp_path, monkeypatch, capsys):
    """An analyst's list: countries by name (UN, World Bank, numeric), products as HS6 (typed as a number, its
    leading zero lost), HS8 with dots, HS10 with "HS", and names. Scored to .xlsx and read back cell by cell; the
    same list written with the bank's own codes scores the same."""
    import openpyxl

    cfg, _ = pipeline_home
    rows = [  # project, importer, supplier, product as written → (importer, supplier, product, match, country_match)
        ("P1", "Kazakhstan", "Russian Federation", 890120, ("KAZ", "RUS", "890120", "exact", "by-name, by-name")),
        ("P2", "Iran (Islamic Republic of)", "China", "8901.20.10", ("IRN", "CHN", "890120", "rolled-up", "by-name, by-name")),
        ("P3", "Kyrgyz Republic", "398", "HS 9001100000", ("KGZ", "KAZ", "900110", "rolled-up", "by-name, numeric")),
        ("P4", "UZB", "Belarus", 40110, ("UZB", "BLR", "040110", "exact", "code, by-name")),
        ("P5", "Tajikistan", "Pakistan", "Tankers", ("TJK", "PAK", "890120", "by-name", "by-name, by-name")),
        ("P6", "Belarus", "Russia", "optical fibres", ("BLR", "RUS", "900110", "by-name", "by-name, by-name")),
    ]
    book = _book(tmp_path / "projects.xlsx", {"Projects": [["project", "importer", "supplier", "product"],
                                                           *[r[:4] for r in rows]]})
    out = tmp_path / "scored.xlsx"
    code, text = _cli(monkeypatch, capsys, cfg.home, "score", book, "--task", "import-substitution", "--output", out)
    assert code == 0, text
    assert "matched by name or rolled up" in text

    wb = openpyxl.load_workbook(out)
    assert wb.sheetnames == ["import-substitution", "About"]
    ws = wb["import-substitution"]
    assert ws.freeze_panes == "A2" and ws.auto_filter.ref.startswith("A1")
    header = [c.value for c in ws[1]]
    assert header[:4] == ["project", "importer", "supplier", "product"]
    col = {name: i for i, name in enumerate(header)}
    for (project, importer, supplier, product, expected), cells in zip(rows, ws.iter_rows(min_row=2), strict=True):
        values = [c.value for c in cells]
        assert values[col["project"]] == project
        assert (values[col["importer"]], values[col["supplier"]], values[col["product"]]) == (importer, supplier, str(product))
        assert (values[col["matched_importer"]], values[col["matched_supplier"]], values[col["matched_product"]],
                values[col["match"]], values[col["country_match"]]) == expected
        assert values[col["importer_name"]] and values[col["product_name"]].startswith(expected[2])
        assert 0 <= values[col["probability"]] <= 1 and cells[col["probability"]].number_format == "0.0%"
        assert cells[col["score"]].number_format == "0.000" and isinstance(values[col["rank"]], int)
        assert values[col["model_version"]].startswith("import-substitution-SCO/")
    about = {r[0].value: r[1].value for r in wb["About"].iter_rows()}
    assert about["model version"].startswith("import-substitution-SCO/") and "calibrated chance" in about["how to read the score"]
    assert any(k.startswith("source: trade") for k in about)

    # the same projects with the bank's codes: the same scores, row by row
    plain = tmp_path / "plain.csv"
    pd.DataFrame([r[4][:3] for r in rows], columns=["importer", "supplier", "product"]).to_csv(plain, index=False)
    code, text = _cli(monkeypatch, capsys, cfg.home, "score", plain, "--task", "import-substitution", "--output",
                      tmp_path / "plain.scored.csv")
    assert code == 0, text
    by_code = pd.read_csv(tmp_path / "plain.scored.csv")
    assert [r[col["score"]] for r in ws.iter_rows(min_row=2, values_only=True)] == pytest.approx(by_code["score"].tolist())


def test_a_workbook_with_several_sheets_needs_sheet(pipeline_home, tmp_path, monkeypatch, capsys):
    cfg, _ = pipeline_home
    book = _book(tmp_path / "two.xlsx", {"KAZ": [["importer", "supplier", "product"], ["KAZ", "RUS", "890120"]],
                                         "UZB": [["importer", "supplier", "product"], ["UZB", "Korea", "890120"]]})
    code, text = _cli(monkeypatch, capsys, cfg.home, "score", book, "--task", "import-substitution", "--output", tmp_path / "o.csv")
    assert code == 2 and "2 sheets have data: 'KAZ', 'UZB'" in text and "--sheet" in text, text
    code, text = _cli(monkeypatch, capsys, cfg.home, "score", book, "--task", "import-substitution", "--sheet", "UZB",
                      "--output", tmp_path / "o.csv")
    assert code == 2 and "ambiguous country 'Korea': closest KOR" in text and "UZB" in text, text
    assert not (tmp_path / "o.csv").exists()
    code, text = _cli(monkeypatch, capsys, cfg.home, "score", book, "--task", "import-substitution", "--sheet", "KAZ",
                      "--output", tmp_path / "o.csv")
    assert code == 0 and pd.read_csv(tmp_path / "o.csv")["matched_product"].astype(str).tolist() == ["890120"], text


def test_ingest_reads_workbooks_for_trade_capacity_names_and_geography(tmp_path, monkeypatch, capsys):
    """Every ingest command takes a sheet of a workbook (by --sheet when there are several); codes typed as numbers
    keep their text; the sheet is part of the source's options, so the same file's other sheet is another source."""
    from recommender.bank import DataBank
    from recommender.pipeline import product_names

    home = tmp_path / "home"
    book = _book(tmp_path / "bank.xlsx", {
        "trade": [["year", "exporter", "importer", "product", "value_usd"], [2015, "KAZ", "CHN", "0101", 1000.0],
                  [2015, "CHN", "KAZ", "8703", 2500.0], [2016, "KAZ", "RUS", "0101", 10.0]],
        "capacity": [["year", "country", "sector", "indicator", "value"], [2015, "KAZ", "D", "value_added", 1.5e9]],
        "names": [["product", "name"], ["0101", "Horses"], ["8703", "Cars"]],
        "geography": [["iso3_a", "iso3_b", "dist_km"], ["KAZ", "CHN", 3000.0]]})
    for command in ("trade", "capacity", "products", "geography"):
        sheet = "names" if command == "products" else command
        code, text = _cli(monkeypatch, capsys, home, "ingest", command, book, "--sheet", sheet)
        assert code == 0 and "ingested" in text, (command, text)
    bank = DataBank(home / "bank")
    trade = bank.read("trade")
    assert sorted(trade["product"].unique()) == ["0101", "8703"] and trade["value_usd"].sum() == 3510.0
    assert bank.read("capacity")["value"].tolist() == [1.5e9]
    assert product_names(bank, shipped=False) == {"0101": "Horses", "8703": "Cars"}
    assert {s["options"].get("sheet") for s in bank.sources} == {"trade", "capacity", "names", "geography"}
    code, text = _cli(monkeypatch, capsys, home, "ingest", "capacity", book)
    assert code == 2 and "4 sheets have data" in text and "--sheet" in text, text
