"""Every reason sentence of the feature registry reads as a person writes numbers: rounded, with its unit."""

from __future__ import annotations

import re

import pytest

from features.registry import FEATURES, format_value, reason

NAMES = {"country": "Kazakhstan", "importer": "Kazakhstan", "supplier": "China", "partner_a": "China",
         "partner_b": "Kazakhstan", "sector": "manufacturing"}
#: Values a feature of each unit takes, from ordinary to extreme.
VALUES = {
    "usd": [694_617_828_501.18, 2.1e9, 374_900_000.0, 12_345.0, 950.0, 0.0],
    "share": [0.4567, 0.0345, 0.0004, 0.0, 1.0],
    "pp": [0.0123, -0.0456, -0.00001],
    "log": [0.3, -0.003, -1e-9, 2.5],
    "change": [0.1234, -0.5, -0.0001],
    "index": [0.19, 1.2345, -0.0001, 694617.1],
    "count": [3.0, 12_345.0, 3.46],
    "km": [3_456.7],
    "flag": [1.0],
}
UNIT_MARK = {"usd": "$", "share": "%", "pp": " pp", "log": "%", "km": " km"}


@pytest.mark.parametrize("name", [n for n, f in FEATURES.items() if f.reason])
def test_every_reason_sentence_is_formatted(name):
    feature = FEATURES[name]
    assert feature.unit in VALUES, f"{name}: unit {feature.unit!r} has no formatting rule"
    for value in VALUES[feature.unit]:
        text = reason(name, value, NAMES)
        assert "{" not in text and "}" not in text and "  " not in text, text
        assert not re.search(r"\d{5,}", text.replace(",", "")) or feature.unit in {"count", "km", "index"}, text
        assert not re.search(r"\d\.\d{3,}", text), f"more than two decimals: {text}"
        assert "-0.0" not in text and "+-" not in text and "nan" not in text.lower(), text
        if "{value}" in feature.reason:
            assert UNIT_MARK.get(feature.unit, "") in text, f"{name}: {text!r} lacks its unit"
        if "{country}" in feature.reason or "{importer}" in feature.reason:
            assert "Kazakhstan" in text, text


@pytest.mark.parametrize(("value", "unit", "text"), [
    (694_617_828_501.18, "usd", "$694.6bn"), (2.5e12, "usd", "$2.5tn"), (950.0, "usd", "$950"),
    (0.25, "share", "25%"), (0.034, "share", "3.4%"), (0.0001, "share", "<0.1%"), (0.0, "share", "0.0%"),
    (-0.0000001, "pp", "+0.0 pp"), (0.0123, "pp", "+1.2 pp"),
    (0.3, "log", "+35%"), (-0.003, "log", "-0.3%"), (-1e-9, "log", "+0.0%"), (-1.0, "log", "-63%"),
    (-0.0001, "index", "0.00"), (1.2345, "index", "1.23"), (0.1234, "change", "+0.12"),
    (3.46, "count", "3.5"), (12_345.0, "count", "12,345"), (float("nan"), "usd", "n/a"),
])
def test_values_read_as_people_write_them(value, unit, text):
    assert format_value(value, unit) == text


@pytest.mark.parametrize("name", list(FEATURES))
def test_a_missing_figure_says_so_in_words(name):
    text = reason(name, float("nan"), NAMES)  # LightGBM gives missing values their own contribution
    assert text.startswith("no figure for ") and "n/a" not in text and "nan" not in text.lower(), text


def test_the_capital_stock_reason_of_the_issue():
    assert reason("capital_stock", 694_617_828_501.18, {"country": "China"}) == "China's capital stock is $694.6bn (2017 prices)"


def test_many_rows_get_the_sentences_one_row_gets():
    """recommender.pipeline.explain.sentences writes each distinct (value, names) sentence once; every row's must be
    the one reason() writes for it alone, for every registered column of every task (roles included)."""
    import numpy as np

    from features.registry import ROLES, resolve
    from recommender.pipeline.explain import sentences

    rng = np.random.default_rng(3)
    countries = np.array(["Kazakhstan", "China", "India", "Belarus", ""], dtype=object)
    sectors = np.array(["manufacturing", "mining", "its"], dtype=object)
    n = 400
    columns = list(FEATURES) + [f"{role}_{name}" for role in ROLES for name in FEATURES]
    checked = 0
    for column in columns:
        values = VALUES[resolve(column)[0].unit]
        drawn = rng.choice(np.array([*values, np.nan], dtype=float), n)  # repeated values, missing ones too
        names = {role: countries[rng.integers(0, len(countries), n)] for role in ROLES}
        names["sector"] = sectors[rng.integers(0, len(sectors), n)]
        expected = [reason(column, drawn[i], {k: v[i] for k, v in names.items()}) for i in range(n)]
        assert sentences(column, drawn, names) == expected, column
        checked += 1
    assert checked > len(FEATURES)
