"""The one configuration object: home, data bank, MLflow tracking URI and bloc.

Importing this module has no side effects; nothing is created until a command writes.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from models.store import Store
from recommender.errors import RecommenderError

#: Named blocs. Membership is current membership, applied to every year.
BLOCS: dict[str, tuple[str, ...]] = {
    "SCO": ("CHN", "RUS", "IND", "IRN", "PAK", "KAZ", "KGZ", "TJK", "UZB", "BLR"),
    "EAEU": ("RUS", "KAZ", "BLR", "ARM", "KGZ"),
    "ASEAN": ("BRN", "KHM", "IDN", "LAO", "MYS", "MMR", "PHL", "SGP", "THA", "VNM"),
    "BRICS": ("BRA", "RUS", "IND", "CHN", "ZAF", "EGY", "ETH", "IRN", "ARE", "IDN"),
}
DEFAULT_BLOC = "SCO"
HOME_ENV = "RECOMMENDER_HOME"
BANK_ENV = "RECOMMENDER_BANK"
TRACKING_ENV = "MLFLOW_TRACKING_URI"
REAL_DATA_ENV = "RECOMMENDER_REAL_DATA"
MAX_ROWS_ENV = "RECOMMENDER_MAX_ROWS"
DEFAULT_MAX_ROWS = 5_000_000
"""The most rows one ``score`` request takes (the scoring benchmark peaks at 1.3 GB per million rows with
263 k distinct keys, so the default stays within a team machine's memory); ``RECOMMENDER_MAX_ROWS`` changes it."""


def max_rows() -> int:
    """The row limit of one scoring request: ``RECOMMENDER_MAX_ROWS``, else :data:`DEFAULT_MAX_ROWS`."""
    raw = os.environ.get(MAX_ROWS_ENV, "").replace("_", "").replace(",", "").strip()
    if not raw:
        return DEFAULT_MAX_ROWS
    if not raw.isdigit() or int(raw) < 1:
        raise RecommenderError(f"{MAX_ROWS_ENV}={os.environ[MAX_ROWS_ENV]!r}: give a positive whole number of rows "
                               f"(default {DEFAULT_MAX_ROWS:,})")
    return int(raw)

_ISO3 = re.compile(r"^[A-Z]{3}$")


@dataclass(frozen=True)
class Bloc:
    """A set of member countries and the short name used in model names."""

    name: str
    members: tuple[str, ...]

    def __contains__(self, iso3: object) -> bool:
        return iso3 in self.members


def resolve_bloc(spec: str | None) -> Bloc:
    """Turn ``"SCO"`` or ``"KAZ,UZB,RUS"`` into a :class:`Bloc`.

    A custom member list gets a stable short name: the sorted members joined by ``-``
    when there are at most four, else ``custom-`` and a 8-character hash of the list.
    """
    spec = (spec or DEFAULT_BLOC).strip()
    if spec.upper() in BLOCS:
        return Bloc(spec.upper(), tuple(sorted(BLOCS[spec.upper()])))
    members = sorted({m.strip().upper() for m in spec.split(",") if m.strip()})
    bad = [m for m in members if not _ISO3.match(m)]
    if bad or len(members) < 2:
        raise RecommenderError(
            f"bloc {spec!r} is neither a named bloc ({', '.join(BLOCS)}) nor a comma-separated "
            f"list of at least two ISO3 codes" + (f"; bad codes: {bad}" if bad else "")
        )
    from recommender.countries import unknown_codes

    unknown = unknown_codes(members)
    if unknown:
        raise RecommenderError(f"bloc {spec!r}: unknown ISO3 code(s) {unknown}")
    if len(members) <= 4:
        name = "-".join(members)
    else:
        import hashlib

        name = "custom-" + hashlib.sha256(",".join(members).encode()).hexdigest()[:8]
    return Bloc(name, tuple(members))


@dataclass(frozen=True)
class Config:
    """Where things live. Build with :meth:`Config.from_env` or pass values directly."""

    home: Path = field(default_factory=lambda: Path(".recommender"))
    tracking_uri: str | None = None
    bloc: Bloc = field(default_factory=lambda: resolve_bloc(DEFAULT_BLOC))
    bank: str | None = None
    """The data bank, when not the home's: a folder, or a URL (``s3://bucket/bank``) of a bank published
    with ``recommender bank push`` (read-only)."""

    @classmethod
    def from_env(
        cls, home: str | Path | None = None, tracking_uri: str | None = None, bloc: str | None = None,
        bank: str | Path | None = None,
    ) -> Config:
        """Explicit arguments win over ``RECOMMENDER_HOME`` / ``MLFLOW_TRACKING_URI`` / ``RECOMMENDER_BANK``, then defaults."""
        home_path = Path(home or os.environ.get(HOME_ENV) or ".recommender").expanduser().absolute()
        uri = tracking_uri or os.environ.get(TRACKING_ENV) or None
        bank = str(bank or os.environ.get(BANK_ENV) or "") or None
        if bank and "://" not in bank:
            bank = str(Path(bank).expanduser().absolute())
        return cls(home=home_path, tracking_uri=uri, bloc=resolve_bloc(bloc), bank=bank)

    @property
    def bank_dir(self) -> Path | str:
        """Where the data bank is: ``HOME/bank``, or the folder or URL given as ``bank``."""
        if self.bank is None:
            return self.home / "bank"
        return self.bank if "://" in self.bank else Path(self.bank)

    @property
    def feature_dir(self) -> Path:
        """The feature cache (:mod:`recommender.pipeline.datasets`): task tables keyed by bank, bloc, task and level."""
        return self.home / "features"

    @property
    def mlflow_uri(self) -> str:
        """The tracking URI: explicit, else a SQLite file under the home."""
        return self.tracking_uri or f"sqlite:///{(self.home / 'mlflow.db').as_posix()}"

    @property
    def artifact_root(self) -> Path:
        return self.home / "mlartifacts"

    @property
    def store(self) -> Store:
        """The MLflow store; a tracking server (http) keeps its own artifacts, a local store under the home."""
        remote = self.mlflow_uri.startswith(("http://", "https://"))
        return Store(self.mlflow_uri, None if remote else self.artifact_root)

    def with_bloc(self, bloc: str | None) -> Config:
        return replace(self, bloc=resolve_bloc(bloc)) if bloc else self


def real_data_dir() -> Path | None:
    """The folder named by ``RECOMMENDER_REAL_DATA`` if it exists, else ``None``."""
    value = os.environ.get(REAL_DATA_ENV)
    if value and Path(value).is_dir():
        return Path(value)
    return None
