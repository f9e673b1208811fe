"""Where runs and models live: an MLflow tracking store, without touching MLflow's global state.

A :class:`Store` is a tracking URI plus the folder for artifacts of experiments it creates.
MLflow's fluent API (``mlflow.start_run``, ``log_model``) reads a process-wide tracking URI;
:meth:`Store.active` sets it only for the duration of a ``with`` block and restores it after,
so a notebook's own MLflow settings survive a call into the library.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import mlflow
from mlflow import MlflowClient

TRAINING_KIND = "custom_model_development"  # makes the MLflow 3 UI open experiments on their runs


@dataclass(frozen=True)
class Store:
    tracking_uri: str
    artifact_root: Path | None = None  # None: the server decides (team mode)

    def client(self) -> MlflowClient:
        if self.artifact_root is not None and self.tracking_uri.startswith("sqlite:"):
            self.artifact_root.parent.mkdir(parents=True, exist_ok=True)
        quiet_mlflow()
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

    @contextmanager
    def active(self) -> Iterator[MlflowClient]:
        """Point MLflow's fluent API at this store inside the block only."""
        client = self.client()
        previous = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None
        mlflow.set_tracking_uri(self.tracking_uri)  # the registry follows it unless set otherwise
        try:
            yield client
        finally:
            mlflow.set_tracking_uri(previous)  # None unsets it (and MLFLOW_TRACKING_URI) again


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
