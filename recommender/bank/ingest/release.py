"""A CEPII BACI release as CEPII ships it: the yearly trade files and the release's own files beside them.

A release (a zip, with or without a folder inside, or the unpacked folder) holds

* ``BACI_HS92_Y2019_V202401b.csv`` … — one trade file per year (``t,i,j,k,v,q``);
* ``country_codes_V202401b.csv`` — BACI's numeric country codes → ISO3 (``country_code``,
  ``country_iso3``; older releases ``iso_3digit_alpha``): used to read the trade files, so no
  ``--country-codes`` is needed;
* ``product_codes_HS92_V202401b.csv`` — ``code,description``: the bank's product names, recorded
  with their HS vintage (HS92, HS17 …) and the release version;
* ``Readme.txt`` — ignored (and said so).

The release's files are recognised by name (versions such as ``V202401b``) and, when renamed, by
their header. :func:`split_release` sorts a list of files and zip members into these roles.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from recommender.bank.ingest.names import validated_names
from recommender.errors import DataValidationError, Problem

TRADE_FILE = re.compile(r"^BACI_(HS\d{2})_Y(\d{4})_(V\d{6}[a-z]?)\.csv$", re.IGNORECASE)
COUNTRY_FILE = re.compile(r"^country_codes_(V\d{6}[a-z]?)\.csv$", re.IGNORECASE)
PRODUCT_FILE = re.compile(r"^product_codes_(HS\d{2})_(V\d{6}[a-z]?)\.csv$", re.IGNORECASE)

Member = tuple[Path, str | None]
"""A file, or a zip archive and the name of a member in it."""


def member_name(member: Member) -> str:
    path, inner = member
    return Path(inner).name if inner else path.name


def member_label(member: Member) -> str:
    path, inner = member
    return f"{path}!{inner}" if inner else str(path)


def _header(member: Member) -> list[str]:
    path, inner = member
    if inner:
        with zipfile.ZipFile(path) as archive, archive.open(inner) as f:
            line = f.readline(4096)
    else:
        with open(path, "rb") as f:
            line = f.readline(4096)
    return [c.strip().strip('"').lower() for c in line.decode("utf-8-sig", "replace").strip().split(",")]


@dataclass
class Release:
    """The roles of a release's files; ``trade`` is every other CSV."""

    trade: list[Member]
    country_codes: Member | None = None
    product_codes: Member | None = None
    vintage: str | None = None  # "HS92"
    version: str | None = None  # "V202401b"
    ignored: list[str] = field(default_factory=list)

    def notes(self) -> list[str]:
        """What each of the release's files was taken for, one line each."""
        title = f"BACI release {self.version or '(version not in the file names)'}" + (f", {self.vintage}" if self.vintage else "")
        lines = [f"{title}: {len(self.trade)} yearly trade file(s)"]
        if self.country_codes:
            lines.append(f"  country codes: {member_name(self.country_codes)} (BACI numeric → ISO3, used to read the trade)")
        if self.product_codes:
            lines.append(f"  product names: {member_name(self.product_codes)} ({self.vintage or 'HS'} descriptions)")
        lines += [f"  ignored: {name}" for name in self.ignored]
        return lines


def split_release(members: list[Member], others: list[str] = ()) -> Release:
    """Sort files into a release's roles by name, else by header; ``others`` are non-CSV files seen (ignored)."""
    release = Release(trade=[], ignored=sorted(others))
    for member in members:
        name = member_name(member)
        trade = TRADE_FILE.match(name)
        if trade:
            release.trade.append(member)
            release.vintage = release.vintage or trade.group(1).upper()
            release.version = release.version or trade.group(3)
            continue
        country, product = COUNTRY_FILE.match(name), PRODUCT_FILE.match(name)
        header = [] if (country or product) else _header(member)
        if country or (header[:1] == ["country_code"] and {"country_iso3", "iso_3digit_alpha"} & set(header)):
            if release.country_codes is not None:
                raise DataValidationError(member_label(member), [Problem(
                    f"a second country-codes file beside {member_name(release.country_codes)}; give one release at a time", count=0)])
            release.country_codes = member
            release.version = release.version or (country.group(1) if country else None)
        elif product or header[:2] == ["code", "description"]:
            if release.product_codes is not None:
                raise DataValidationError(member_label(member), [Problem(
                    f"a second product-codes file beside {member_name(release.product_codes)}; give one release at a time", count=0)])
            release.product_codes = member
            if product:
                release.vintage = release.vintage or product.group(1).upper()
                release.version = release.version or product.group(2)
        else:
            release.trade.append(member)
    return release


def product_codes_table(path: Path, label: str) -> pa.Table:
    """A release's ``code,description`` file as the bank's ``product_names`` (codes as six-digit text)."""
    return validated_names(path, {"product": "code", "name": "description"}, source=label, pad=True)


def looks_like_release(path: Path) -> bool:
    """Whether a file (or a zip's member) is named as a BACI release's yearly or country-codes file."""
    names = [path.name]
    if path.suffix.lower() == ".zip":
        try:
            with zipfile.ZipFile(path) as archive:
                names = [Path(n).name for n in archive.namelist()]
        except zipfile.BadZipFile:
            return False
    return any(TRADE_FILE.match(n) or COUNTRY_FILE.match(n) for n in names)


def non_csv_names(path: Path) -> list[str]:
    """The names of a zip's members (or a folder's files) that are not CSV: the readme and its kin."""
    if path.is_dir():
        return [p.name for p in path.iterdir() if p.is_file() and p.suffix.lower() not in {".csv", ".parquet", ".zip", ".gz"}]
    if path.suffix.lower() == ".zip":
        try:
            with zipfile.ZipFile(path) as archive:
                return [Path(n).name for n in archive.namelist()
                        if not n.endswith("/") and not n.startswith("__MACOSX") and not n.lower().endswith(".csv")]
        except zipfile.BadZipFile:
            return []
    return []
