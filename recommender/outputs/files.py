"""Output files written whole or not at all: the accepted suffixes and the temporary-file-and-rename rule.

Light on purpose (no pandas, no Arrow): the scoring service's client writes its output with it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from recommender.errors import RecommenderError

OUTPUT_SUFFIXES = (".csv", ".parquet", ".xlsx")


def check_output(path: str | Path) -> Path:
    """An output path must end in .csv, .parquet or .xlsx; a clear error otherwise."""
    path = Path(path)
    if path.suffix.lower() not in OUTPUT_SUFFIXES:
        raise RecommenderError(f"--output must end in .csv, .parquet or .xlsx; got {path.name!r}")
    return path


@contextmanager
def atomic_output(path: str | Path) -> Iterator[str]:
    """Yield a temporary file beside ``path``; it replaces ``path`` only if the block succeeds (else it is removed)."""
    path = Path(path)
    if path.is_dir():
        raise RecommenderError(f"--output {path} is a folder: name a file in it")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise RecommenderError(f"--output {path}: cannot write there ({exc.strerror or exc}); "
                               "choose a folder you can write to") from None
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
