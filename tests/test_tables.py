"""The one reader of users' tables and the one country-code normaliser."""

from __future__ import annotations

import pandas as pd
import pytest

from recommender import countries
from recommender.errors import DataValidationError
from recommender.tables import read_frame, read_frames


def test_one_missing_rule_for_csv_and_parquet(tmp_path):
    frame = pd.DataFrame({"importer": ["NA", "", "kaz"], "product": ["010121", "null", "-"], "value": [2010.0, 0.1, None]})
    csv, parquet = tmp_path / "t.csv", tmp_path / "t.parquet"
    csv.write_text("importer,product,value\nNA,010121,2010\n,null,0.1\nkaz,-,\n")
    frame.assign(importer=frame["importer"].replace("", None)).to_parquet(parquet)
    for path in (csv, parquet):
        got = read_frame(path)
        assert got["importer"].tolist()[0] == "NA"  # Namibia, not missing
        assert got["importer"].isna().tolist() == [False, True, False]  # only the empty cell is missing
        assert got["product"].tolist() == ["010121", "null", "-"]  # text stays text, leading zero kept
        assert got["value"].tolist()[:2] == ["2010", "0.1"] and pd.isna(got["value"][2])  # numbers as exact text


def test_parquet_keeps_types_of_columns_not_asked_as_text(tmp_path):
    path = tmp_path / "p.parquet"
    pd.DataFrame({"product": [10121], "capex": [-12.5]}).to_parquet(path)
    got = next(read_frames(path, text={"product"}))
    assert got["product"].tolist() == ["10121"] and got["capex"].tolist() == [-12.5]


@pytest.mark.parametrize("content, reason", [(b"", "empty"), (b"\n\n", "empty"), (b"a,b\n\xff\xfe,1\n", "not UTF-8"),
                                             (b"PAR1garbage", "could not read")])
def test_unreadable_files_raise_one_clear_error(tmp_path, content, reason):
    path = tmp_path / ("t.parquet" if content.startswith(b"PAR1") else "t.csv")
    path.write_bytes(content)
    with pytest.raises(DataValidationError, match=reason) as err:
        read_frame(path)
    assert str(path) in str(err.value)


def test_country_codes_normalised_once_everywhere():
    values = pd.Series([" kaz", "ROM", None, "398", "999", "rus"])
    plain = countries.normalise(values)
    assert plain[0] == "KAZ" and plain[1] == "ROU" and pd.isna(plain[2]) and plain[5] == "RUS"
    got = countries.normalise(values, numeric=True)
    assert got[0] == "KAZ" and got[1] == "ROU" and pd.isna(got[2]) and got[3] == "KAZ" and got[4] == "#999"
    assert plain[3] == "398"  # digits are codes only when the source says so


def test_csv_rows_with_the_wrong_number_of_fields_are_refused_with_their_lines(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b,c\n1,2,3\n4,5\n6,7,8\n9,10,11,12\n")
    with pytest.raises(DataValidationError, match="header's 3") as err:
        read_frame(path)
    assert "2 row(s) at line(s) 3, 5" in str(err.value)  # line 1 is the header


def test_csv_header_after_empty_lines_still_reads_text(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("\n\nimporter,product\nKAZ,010121\n")
    got = read_frame(path)
    assert list(got.columns) == ["importer", "product"] and got["product"].tolist() == ["010121"]  # leading zero kept


def test_csv_header_must_name_each_column_once(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("importer,product,importer\nKAZ,010121,RUS\n")
    with pytest.raises(DataValidationError, match=r"\['importer'\] appear more than once"):
        read_frame(path)


def test_csv_chunks_are_cut_to_chunk_rows_and_keep_quoting_and_bom(tmp_path):
    path = tmp_path / "t.csv"
    rows = [f'P{i},"line one\nline two, {i}"' for i in range(2500)]
    path.write_bytes(("\ufeffid,note\n" + "\n".join(rows) + "\n").encode())
    chunks = list(read_frames(path, chunk_rows=1000))
    assert [len(c) for c in chunks] == [1000, 1000, 500]
    whole = pd.concat(chunks, ignore_index=True)
    assert list(whole.columns) == ["id", "note"]  # the byte-order mark is not part of the first name
    assert whole["note"][7] == "line one\nline two, 7" and whole["id"].tolist() == [f"P{i}" for i in range(2500)]


def test_spreadsheet_formulas_neutralised_the_same_in_arrow_and_pandas():
    import pyarrow as pa

    from recommender.outputs.writers import neutralise_batch, neutralise_formulas

    cells = ["=SUM(A1)", "+1", "-12.5", "-x", "@cmd", "\tfoo", "\rbar", "plain", None, "1e5", "+.5", "a=b", ""]
    want = ["'=SUM(A1)", "+1", "-12.5", "'-x", "'@cmd", "'\tfoo", "'\rbar", "plain", None, "1e5", "+.5", "a=b", ""]
    frame = pd.DataFrame({"=head": cells, "value": range(len(cells))})
    got = neutralise_formulas(frame)
    assert list(got.columns) == ["'=head", "value"]
    assert [None if pd.isna(v) else v for v in got["'=head"]] == want
    assert got["value"].tolist() == list(range(len(cells)))  # numbers are left alone
    batch = neutralise_batch(pa.RecordBatch.from_pandas(frame, preserve_index=False))
    assert batch.schema.names == ["'=head", "value"] and batch.column(0).to_pylist() == want
