"""Where runs and models live: an MLflow tracking store, without touching MLflow's global state.

A :class:`Store` is a tracking URI plus the folder for artifacts of experiments it creates.
MLflow's fluent API (``mlflow.start_run``, ``log_model``) reads a process-wide tracking URI;
:meth:`Store.active` sets it only for the duration of a ``with`` block and restores it after,
so a notebook's own MLflow settings survive a call into the library.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from models.errors import ModelError

if TYPE_CHECKING:  # MLflow takes seconds to import: commands that never track (ingest, bank, --help) skip it
    from mlflow import MlflowClient

TRAINING_KIND = "custom_model_development"  # makes the MLflow 3 UI open experiments on their runs


@dataclass(frozen=True)
class Store:
    tracking_uri: str
    artifact_root: Path | None = None  # None: the server decides (team mode)

    def client(self) -> MlflowClient:
        if self.artifact_root is not None and self.tracking_uri.startswith("sqlite:"):
            self.artifact_root.parent.mkdir(parents=True, exist_ok=True)
        if is_server(self.tracking_uri):
            check_server(self.tracking_uri)
        quiet_mlflow()
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    def experiment_id(self, name: str, note: str) -> str:
        """The experiment ``name``, created (with ``note`` as its description) if new."""
        client = self.client()
        exp = client.get_experiment_by_name(name)
        if exp is not None:
            return exp.experiment_id
        location = (self.artifact_root / name).absolute().as_uri() if self.artifact_root is not None else None
        return client.create_experiment(name, artifact_location=location,
                                        tags={"mlflow.note.content": note, "mlflow.experimentKind": TRAINING_KIND})

    def probe(self) -> None:
        """One cheap read, so a store that cannot answer fails before a long command does its work."""
        self.client().search_experiments(max_results=1)

    @contextmanager
    def active(self) -> Iterator[MlflowClient]:
        """Point MLflow's fluent API at this store inside the block only."""
        import mlflow

        client = self.client()
        previous = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None
        mlflow.set_tracking_uri(self.tracking_uri)  # the registry follows it unless set otherwise
        try:
            yield client
        finally:
            mlflow.set_tracking_uri(previous)  # None unsets it (and MLFLOW_TRACKING_URI) again


USERNAME_ENV, PASSWORD_ENV = "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"
_REACHED: set[str] = set()


def is_server(uri: str) -> bool:
    """A tracking server (team mode) rather than a local store."""
    return uri.startswith(("http://", "https://"))


def check_server(uri: str, timeout: float = 30) -> None:
    """Once per process: the tracking server at ``uri`` answers, and no credential sits in the URI.

    Credentials come from ``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD`` only: a URI is
    printed, logged and stored in places where a password must never be.
    """
    if uri in _REACHED:
        return
    parts = urlsplit(uri)
    if parts.username or parts.password:
        raise ModelError(f"the tracking URI holds a user name or password; give http://{parts.hostname}"
                         f"{f':{parts.port}' if parts.port else ''}{parts.path} and put the credentials in "
                         f"{USERNAME_ENV} and {PASSWORD_ENV}")
    import requests

    try:
        requests.get(uri.rstrip("/") + "/health", timeout=timeout).raise_for_status()
    except requests.RequestException as exc:
        reason = type(exc).__name__ if not isinstance(exc, requests.HTTPError) else str(exc)
        raise ModelError(f"cannot reach the MLflow tracking server at {uri} ({reason}): is it running "
                         "(`recommender server ...` on that machine) and is the address right (--tracking-uri or "
                         "MLFLOW_TRACKING_URI)?") from None
    _REACHED.add(uri)


def refusal(exc: BaseException) -> str | None:
    """One clear sentence for a tracking server's 401/403/413, or None if ``exc`` is something else."""
    code = getattr(exc, "error_code", None)
    response = getattr(exc, "response", None)
    if code == "REQUEST_LIMIT_EXCEEDED" or getattr(response, "status_code", None) == 413:
        try:  # the team server's own sentence (recommender.team.app), else a generic one
            detail = response.json()["message"] if response is not None else str(exc.message)
        except (ValueError, KeyError, AttributeError):
            detail = "the request is larger than it accepts in one request"
        return f"the tracking server refused an upload: {detail}"
    user = os.environ.get(USERNAME_ENV)
    where = f"the tracking server {next(iter(_REACHED))}" if len(_REACHED) == 1 else "the tracking server"
    if code == "UNAUTHENTICATED":
        if not user or not os.environ.get(PASSWORD_ENV):
            return (f"{where} asks who you are: set {USERNAME_ENV} and {PASSWORD_ENV} (an admin creates "
                    "accounts with `recommender users add`)")
        return f"{where} refused the user name {user!r} or its password ({USERNAME_ENV} / {PASSWORD_ENV})"
    if code == "PERMISSION_DENIED":
        return (f"{where} refused: user {user!r} lacks the permission for this; an admin can grant it with "
                "`recommender users grant`")
    return None


RETRIES = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "5", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
           "MLFLOW_HTTP_REQUEST_TIMEOUT": "60"}
"""The CLI's retry budget for a tracking server: 5 retries 1, 2, 4, 8, 16 s apart (about 31 s; MLflow's own
defaults, 7 retries with factor 2, wait about 4 min), each request at most 60 s. Set the variables to change it."""


def unreachable(exc: BaseException) -> str | None:
    """One clear sentence for a tracking server that did not answer (after MLflow's retries), or None.

    A team server whose database is down answers HTTP 500 to every request; a stopped server
    refuses connections. Either way the command cannot read or record runs, and says so instead of
    a traceback or a misleading "no champion".
    """
    if not type(exc).__module__.startswith("mlflow") or "API request to" not in str(exc):
        return None
    text = str(exc)
    where = f"the tracking server {next(iter(_REACHED))}" if len(_REACHED) == 1 else "the tracking server"
    if "NewConnectionError" in text or "Connection refused" in text or "RemoteDisconnected" in text \
            or "Connection aborted" in text:
        cause = "is not answering (the connection was refused or dropped): the server may have stopped"
    elif "500" in text or "503" in text or "502" in text:
        cause = "answers with server errors (HTTP 5xx): its database is probably down or restarting"
    elif "timed out" in text.lower() or "Timeout" in text:
        cause = "did not answer in time"
    else:
        cause = "failed: " + text.splitlines()[0][:200]
    retries = os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "7")
    return (f"{where} {cause}, after {retries} retries. Nothing more was read or recorded; check `recommender server` "
            "on that machine (its log names the cause) and run the command again once it answers")


def store_full(exc: BaseException) -> str | None:
    """One clear sentence for a local tracking store (SQLite) whose disk filled up, or None.

    SQLite reports ENOSPC from C as ``database or disk is full`` (SQLITE_FULL), which SQLAlchemy and
    MLflow wrap; the exception chain is searched for it. The statement that failed was rolled back, so
    nothing is half-written in the store; a run it could not close is left RUNNING and is marked
    FAILED by the next training (:func:`models.tracking.fail_orphans`).
    """
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if "database or disk is full" in str(exc):
            return ("the tracking store's disk is full (SQLite: database or disk is full); the statement that failed "
                    "was rolled back, no run was recorded as finished and no model version was registered. Free "
                    "space and run again (a run this left RUNNING is marked FAILED by the next train)")
        exc = exc.__cause__ or exc.__context__
    return None


def as_param(value) -> str:
    """How a value is stored as an MLflow param (lists and dicts as JSON), for logging and comparing."""
    return json.dumps(value) if isinstance(value, list | dict) else str(value)


_VERBOSE = False


def quiet_mlflow(verbose: bool | None = None) -> None:
    """Keep MLflow's INFO chatter (database migrations, registrations) out of the user's terminal.

    ``verbose=True`` (the CLI's ``--verbose``) lets it through for the rest of the process.
    """
    global _VERBOSE
    if verbose is not None:
        _VERBOSE = verbose
    level = logging.INFO if _VERBOSE else logging.WARNING
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(level)
    # the store's database errors are raised too, and the CLI says them in one sentence (store_full, unreachable);
    # MLflow also logs each with its traceback, which only --verbose shows
    logging.getLogger("mlflow.store.db.utils").setLevel(level if _VERBOSE else logging.CRITICAL)
