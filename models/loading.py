"""Load a ranker from the project's own MLflow store, safely.

A model URI is resolved **only** against the given tracking store, and only three forms are
accepted: ``models:/NAME@ALIAS``, ``models:/NAME/VERSION`` and ``runs:/RUN_ID/NAME``. The
artifact must be MLflow's native LightGBM flavour of a ``lightgbm.Booster`` (a text model file,
``model.lgb``); it is read with ``lightgbm.Booster(model_file=...)``. Nothing is ever
unpickled: MLflow's own loaders would deserialise pickle/cloudpickle flavours, which run
arbitrary code, so they are not used here.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import yaml
from mlflow import MlflowClient
from mlflow.artifacts import download_artifacts
from mlflow.exceptions import MlflowException

from models.errors import ModelError, UnsafeModelError

_REGISTERED = re.compile(r"^models:/(?P<name>[A-Za-z0-9][A-Za-z0-9_.\-]*)(?:/(?P<version>[0-9]+)|@(?P<alias>[A-Za-z0-9_\-]+))$")
_RUN = re.compile(r"^runs:/(?P<run_id>[0-9a-f]{32})/(?P<name>[A-Za-z0-9_\-]+)/?$")
ACCEPTED = "models:/NAME@ALIAS, models:/NAME/VERSION or runs:/RUN_ID/model"
NATIVE_CLASS = "lightgbm.basic.Booster"


@dataclass(frozen=True)
class LoadedModel:
    """A booster, the label it is known by (``name/version`` or the URI), and the run that logged it."""

    booster: lgb.Booster
    label: str
    run_id: str | None
    calibration: dict | None = None  # score → probability (models.calibration), when the run has one


def _artifact_location(client: MlflowClient, uri: str) -> tuple[str, str | None]:
    """(artifact URI in the store, run id) for an accepted model URI; :class:`UnsafeModelError` otherwise."""
    registered, run = _REGISTERED.match(uri), _RUN.match(uri)
    try:
        if registered:
            name, version, alias = registered["name"], registered["version"], registered["alias"]
            mv = client.get_model_version(name, version) if version else client.get_model_version_by_alias(name, alias)
            return client.get_model_version_download_uri(name, mv.version), mv.run_id
        if run:
            info = client.get_run(run["run_id"]).info
            found = client.search_logged_models(
                experiment_ids=[info.experiment_id],
                filter_string=f"source_run_id = '{run['run_id']}' AND name = '{run['name']}'", max_results=1)
            if not found:
                raise ModelError(f"run {run['run_id']} logged no model named {run['name']!r}")
            return found[0].artifact_location, run["run_id"]
    except MlflowException as exc:
        raise ModelError(f"could not find model {uri} in the tracking store: {exc.message}") from exc
    raise UnsafeModelError(
        f"--model-uri {uri!r} is not accepted: models are loaded only from the project's own tracking store, "
        f"as {ACCEPTED}; paths, file:// and http(s):// locations are refused because a model file can run code")


def read_native_booster(folder: Path, uri: str) -> lgb.Booster:
    """The booster of an MLflow model folder, after checking it is the native LightGBM text format."""
    mlmodel = folder / "MLmodel"
    if not mlmodel.is_file():
        raise UnsafeModelError(f"{uri}: not an MLflow model (no MLmodel file)")
    try:
        flavour = (yaml.safe_load(mlmodel.read_text()) or {}).get("flavors", {}).get("lightgbm")
    except yaml.YAMLError as exc:
        raise UnsafeModelError(f"{uri}: unreadable MLmodel file ({exc})") from exc
    if not isinstance(flavour, dict):
        raise UnsafeModelError(f"{uri}: not a LightGBM model (no lightgbm flavour); only native LightGBM boosters are loaded")
    data = str(flavour.get("data", ""))
    if flavour.get("model_class") != NATIVE_CLASS or not data.endswith(".lgb"):
        raise UnsafeModelError(
            f"{uri}: refused: the model is stored as {flavour.get('model_class')!r} in {data!r}, a pickled format that can "
            "run code when loaded; only native LightGBM boosters (model.lgb) are loaded. Re-train with `recommender train`.")
    path = (folder / data).resolve()
    if folder.resolve() not in path.parents or not path.is_file():
        raise UnsafeModelError(f"{uri}: the model file {data!r} is missing or lies outside the model folder")
    try:
        return lgb.Booster(model_file=str(path))
    except lgb.basic.LightGBMError as exc:
        raise ModelError(f"{uri}: the LightGBM model file could not be read: {exc}") from exc


def load_booster(client: MlflowClient, uri: str, *, label: str | None = None) -> LoadedModel:
    """Resolve ``uri`` in the store of ``client`` and load its native booster (see the module docstring)."""
    location, run_id = _artifact_location(client, uri.strip())
    with tempfile.TemporaryDirectory(prefix="recommender-model-") as tmp:
        try:
            local = Path(download_artifacts(artifact_uri=location, dst_path=tmp, tracking_uri=client.tracking_uri))
        except (MlflowException, OSError) as exc:
            raise ModelError(f"could not download model {uri} from the tracking store: {exc}") from exc
        booster = read_native_booster(local, uri)
    return LoadedModel(booster, label or uri, run_id)
