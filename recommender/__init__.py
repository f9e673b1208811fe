"""Industrial-cooperation recommender: data bank, configuration, scoring and the CLI."""

from importlib.metadata import PackageNotFoundError, version

import features  # noqa: F401  (sets the OpenMP wait policy before LightGBM loads)

try:
    __version__ = version("industrial-cooperation-recommender")  # pyproject.toml is the one source
except PackageNotFoundError:  # pragma: no cover - running from a source tree that was never installed
    __version__ = "0+unknown"
