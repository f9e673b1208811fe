"""Products and countries as people write them: codes at any level, sections, names (exact, fuzzy, ambiguous)."""

from __future__ import annotations

import pytest

from features.sectors import hs_descriptions, short_name
from recommender.countries import lookup
from recommender.pipeline.matching import ProductMatcher, coverage_score, parse_code

HS4 = sorted(c for c in hs_descriptions() if len(c) == 4)
HS6 = sorted(c for c in hs_descriptions() if len(c) == 6)
SECTIONS = [f"{s:02d}" for s in range(1, 23)]


@pytest.mark.parametrize(("text", "parsed"), [
    ("870323", ("hs", "870323")), ("8703.23", ("hs", "870323")), ("HS 87 03 23", ("hs", "870323")),
    ("hs:8703", ("hs", "8703")), ("101", ("hs", "0101")), ("10121", ("hs", "010121")), ("8703231000", ("hs", "8703231000")),
    ("XVI", ("section", "16")), ("Section 16", ("section", "16")), ("section xvii", ("section", "17")),
    ("wheat", None), ("12345678901", None), ("Section 40", None),
])
def test_codes_are_read_as_people_write_them(text, parsed):
    assert parse_code(text) == parsed


@pytest.mark.parametrize(("codes", "classification", "text", "expected", "how"), [
    (HS4, "hs", "8703", ("8703",), "exact"),
    (HS4, "hs", "HS 870323", ("8703",), "rolled-up"),  # finer than the bank: rolled up
    (HS4, "hs", "87032310", ("8703",), "rolled-up"),  # a national tariff line
    (HS4, "hs", "101", ("0101",), "exact"),  # Excel dropped the leading zero
    (HS6, "hs", "870323", ("870323",), "exact"),
    (SECTIONS, "hs-section", "870323", ("17",), "rolled-up"),
    (SECTIONS, "hs-section", "16", ("16",), "exact"),  # two digits in a bank of sections: the section
    (SECTIONS, "hs-section", "XVI", ("16",), "exact"),
])
def test_codes_resolve_to_the_bank_level(codes, classification, text, expected, how):
    found = ProductMatcher(codes, classification).match(text)
    assert (found.codes, found.how) == (expected, how)


def test_a_coarser_code_is_a_set_only_where_the_command_means_one():
    matcher = ProductMatcher(HS4)
    with pytest.raises(LookupError, match=r"'87' \(87\) is coarser than the bank's 4-digit codes; write one of 8701, 8702"):
        matcher.match("87")
    chapter = matcher.match("87", as_set=True)
    assert chapter.how == "expanded" and chapter.codes == tuple(c for c in HS4 if c.startswith("87"))
    section = matcher.match("section XVII", as_set=True)
    assert {c[:2] for c in section.codes} == {"86", "87", "88", "89"}
    with pytest.raises(LookupError, match="not in the data bank"):
        matcher.match("7701")  # chapter 77 is reserved


@pytest.mark.parametrize(("codes", "classification", "text", "expected"), [
    (HS4, "hs", "wheat", ("1001",)),  # everyday name
    (HS4, "hs", "motor cars", ("8703",)),
    (HS4, "hs", "Passenger cars", ("8703",)),
    (HS4, "hs", "crude oil", ("2709",)),
    (HS4, "hs", "Wheat and meslin", ("1001",)),  # an HS description, exactly
    (HS4, "hs", "wheat flour", ("1101",)),  # every word in one description: "Wheat or meslin flour"
    (HS4, "hs", "flour of wheat", ("1101",)),
    (HS4, "hs", "sunflower seed", ("1206",)),  # plural or not
    (HS4, "hs", "t-shirts", ("6109",)),
    (HS6, "hs", "crude oil", ("270900",)),
    (SECTIONS, "hs-section", "motor cars", ("17",)),  # rolled up to its section
    (SECTIONS, "hs-section", "machinery and electrical equipment", ("16",)),  # the project's section names
])
def test_names_match_exactly_then_by_words(codes, classification, text, expected):
    found = ProductMatcher(codes, classification).match(text)
    assert found.codes == expected and found.how == "by-name"


def test_the_bank_names_come_first():
    matcher = ProductMatcher(["1001", "8703"], names={"8703": "Wheat"})  # a bank's own (odd) name wins
    assert matcher.match("wheat").codes == ("8703",)


def test_ambiguous_and_unknown_names_list_the_choices():
    matcher = ProductMatcher(HS4)
    with pytest.raises(LookupError, match=r"ambiguous product 'frozen fish fillets': it matches 030[34] '.*'; 030[34]"):
        matcher.match("frozen fish fillets")
    with pytest.raises(LookupError, match=r"unknown product 'zqxv gadgets': closest \d{4} '"):
        matcher.match("zqxv gadgets")
    with pytest.raises(LookupError, match=r"'wheat' \(1001 'Wheat and meslin'\) is coarser than the bank's 6-digit"):
        ProductMatcher(HS6).match("wheat")  # a heading's name in an HS6 bank: choose the six-digit line
    assert ProductMatcher(HS6).match("wheat", as_set=True).codes == ("100111", "100119", "100191", "100199")


def test_coverage_score_wants_every_word():
    assert coverage_score("wheat flour", "wheat or meslin flour") > 80 > coverage_score("wheat flour", "wheat and meslin")
    assert coverage_score("tankers", "tankers") == 100


def test_short_names_fit_a_table():
    assert short_name(hs_descriptions()["8703"]) == "Motor cars and other motor vehicles"
    assert short_name(hs_descriptions()["870110"]) == "Tractors; single axle"


@pytest.mark.parametrize(("text", "iso3", "how"), [
    ("KAZ", "KAZ", "code"), ("kaz", "KAZ", "code"), ("ROM", "ROU", "code"), ("398", "KAZ", "numeric"), ("842", "USA", "numeric"),
    ("Kazakhstan", "KAZ", "by-name"), ("Russian Federation", "RUS", "by-name"), ("Russia", "RUS", "by-name"),
    ("Iran (Islamic Republic of)", "IRN", "by-name"), ("Iran, Islamic Rep.", "IRN", "by-name"), ("Türkiye", "TUR", "by-name"),
    ("Turkey", "TUR", "by-name"), ("Korea, Rep.", "KOR", "by-name"), ("Egypt, Arab Rep.", "EGY", "by-name"),
    ("Congo, Dem. Rep.", "COD", "by-name"), ("Kyrgyz Republic", "KGZ", "by-name"), ("Lao PDR", "LAO", "by-name"),
    ("Venezuela, RB", "VEN", "by-name"), ("Hong Kong SAR, China", "HKG", "by-name"), ("China, Hong Kong SAR", "HKG", "by-name"),
    ("Côte d'Ivoire", "CIV", "by-name"), ("Cote d'Ivoire", "CIV", "by-name"), ("St. Lucia", "LCA", "by-name"),
    ("Micronesia, Fed. Sts.", "FSM", "by-name"), ("Viet Nam", "VNM", "by-name"), ("Uzbekistn", "UZB", "by-name"),
])
def test_countries_as_the_un_and_world_bank_write_them(text, iso3, how):
    assert lookup(text) == (iso3, how)


def test_ambiguous_and_unknown_countries_list_the_choices():
    with pytest.raises(LookupError, match=r"ambiguous country 'Korea': closest KOR \(South Korea\), PRK"):
        lookup("Korea")
    with pytest.raises(LookupError, match=r"unknown country 'Qzxland': closest [A-Z]{3} \("):
        lookup("Qzxland")
