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


@pytest.mark.parametrize("content, reason", [(b"", "empty"), (b"a,b\n\xff\xfe,1\n", "not UTF-8"),
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
