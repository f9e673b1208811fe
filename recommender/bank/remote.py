"""Banks at a URL (``s3://…``): the fsspec filesystem, and storage failures as one clear error."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import duckdb

from recommender.errors import RecommenderError


class Located(Protocol):
    """What :func:`remote_errors` reads of a bank: where it is, and whether that is a URL."""

    root: str | Path
    remote: bool


def is_remote(location: str | Path) -> bool:
    """True for an fsspec URL other than a local file (``s3://bucket/bank``, ``gs://…``, ``memory://…``)."""
    text = str(location)
    return "://" in text and not text.startswith("file://")


def filesystem(location: str | Path) -> tuple[Any, str]:
    """The fsspec filesystem of a bank and the bank's path in it, with a clear error for what is missing."""
    import fsspec

    try:
        return fsspec.core.url_to_fs(str(location))
    except ImportError as exc:  # fsspec names the package: "Install s3fs to access S3"
        raise RecommenderError(f"cannot open the data bank at {location}: {exc} (`make install` installs s3fs "
                               "for s3:// banks; another storage needs its fsspec package)") from exc
    except ValueError as exc:  # "Protocol not known: …"
        raise RecommenderError(f"cannot open the data bank at {location}: {exc}. Use a folder or an fsspec "
                               "URL such as s3://bucket/bank") from exc


@contextmanager
def remote_errors(bank: Located) -> Iterator[None]:
    """A remote bank's storage failures (no such bucket, no credentials, endpoint unreachable) as one
    clear :class:`RecommenderError`; a local bank's errors pass unchanged."""
    if not bank.remote:
        yield
        return
    try:
        yield
    except RecommenderError:
        raise
    except (OSError, duckdb.IOException, duckdb.HTTPException) as exc:
        raise RemoteBankError(bank.root, exc) from exc
    except Exception as exc:
        if type(exc).__module__.split(".")[0] not in ("botocore", "aiobotocore", "s3fs", "fsspec", "gcsfs", "adlfs"):
            raise
        raise RemoteBankError(bank.root, exc) from exc


class RemoteBankError(RecommenderError):
    """A bank at a URL could not be read."""

    def __init__(self, location: str | Path, exc: BaseException):
        super().__init__(
            f"cannot use the data bank at {location}: {type(exc).__name__}: {exc}. Check the URL, and that "
            "this machine (and every Dask worker) has the storage's credentials and endpoint (for S3: "
            "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and, for a server other than AWS, AWS_ENDPOINT_URL)")
