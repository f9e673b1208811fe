"""The model registry's policy: model names, the ``champion`` alias, and loading a champion.

The champion moves to a new version only when it beats the current champion on a comparable
evaluation: the same task definition (horizon, thresholds, minimum value), the same test years,
product level and data bank. Anything else needs ``--promote``.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from models.errors import ModelError
from models.loading import LoadedModel, load_booster
from models.store import Store, as_param

CHAMPION = "champion"
CALIBRATION_FILE = "calibration.json"
COMPARABLE = ("test_years", "horizon", "product_level", "relevance_thresholds", "min_candidate_value_usd")
"""Run params that must be equal for two test NDCG@10 values to be compared (plus the bank hash)."""


def model_name(task: str, bloc: str) -> str:
    """Registered-model name: ``import-substitution-SCO``; custom blocs use their stable short name."""
    return f"{task}-{bloc}"


def current_champion(client: MlflowClient, name: str):
    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None


def decide_champion(client: MlflowClient, name: str, version: str, score: float, params: dict, manifest_hash: str,
                    force: bool) -> tuple[bool, str]:
    """Move ``champion`` to ``version`` only if it beats the champion on a comparable evaluation."""
    current = current_champion(client, name)
    if current is None or force:
        client.set_registered_model_alias(name, CHAMPION, version)
        why = "forced" if force and current is not None else "no champion yet"
        return True, f"version {version} is now champion of {name} ({why}; test NDCG@10 {score:.4f})"
    old_run = client.get_run(current.run_id)
    differs = [k for k in COMPARABLE if k in params and old_run.data.params.get(k) != as_param(params[k])]
    if old_run.data.tags.get("bank_manifest_hash") != manifest_hash:
        differs.append("data bank")
    old = old_run.data.metrics.get("test_ndcg_at_10", float("nan"))
    if differs:
        return False, (f"champion stays version {current.version} of {name}: its {', '.join(differs)} differ, so NDCG@10 "
                       f"{old:.4f} is not comparable with {score:.4f}; use --promote to replace it")
    if score > old:
        client.set_registered_model_alias(name, CHAMPION, version)
        return True, f"version {version} is now champion of {name}: NDCG@10 {score:.4f} beats version {current.version}'s {old:.4f} on the same test years"
    return False, f"champion stays version {current.version} of {name}: NDCG@10 {old:.4f} ≥ new version {version}'s {score:.4f}"


def load_calibration(client: MlflowClient, run_id: str | None) -> dict | None:
    """The run's probability calibration (JSON, :mod:`models.calibration`), or None if it has none."""
    if not run_id:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = client.download_artifacts(run_id, CALIBRATION_FILE, tmp)
        except (MlflowException, OSError):
            return None
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError):
            return None
    return data if isinstance(data, dict) and {"x", "y"} <= set(data) else None


def load_champion(store: Store, name: str, model_uri: str | None = None, *, hint: str = "") -> tuple[LoadedModel, dict]:
    """The champion of ``name`` (or ``model_uri``, from this store only) and its run's params."""
    client = store.client()
    if model_uri is None:
        mv = current_champion(client, name)
        if mv is None:
            raise ModelError(f"no champion model {name!r} in {store.tracking_uri}" + (f"; {hint}" if hint else ""))
        loaded = load_booster(client, f"models:/{name}/{mv.version}", label=f"{name}/{mv.version}")
    else:
        loaded = load_booster(client, model_uri)
    params = client.get_run(loaded.run_id).data.params if loaded.run_id else {}
    return replace(loaded, calibration=load_calibration(client, loaded.run_id)), params


def reusable_champion(store: Store, name: str, manifest_hash: str, params: dict) -> str | None:
    """The champion's run id if it was trained on exactly this bank with these parameters."""
    client = store.client()
    mv = current_champion(client, name)
    if mv is None:
        return None
    run = client.get_run(mv.run_id)
    same = run.data.tags.get("bank_manifest_hash") == manifest_hash and all(run.data.params.get(k) == as_param(v) for k, v in params.items())
    return mv.run_id if same else None


def registered_versions(client: MlflowClient) -> list[dict]:
    """Every registered version of every model, newest first, with its standing.

    ``status`` is ``champion``; ``registered`` (a trained challenger that did not win);
    ``failed run`` when its training run did not finish (killed or failed after registering; safe to
    delete); or ``run deleted``. ``ndcg_at_10`` is the run's held-out test NDCG@10.
    """
    rows = []
    for model in client.search_registered_models(max_results=1000):
        champion = model.aliases.get(CHAMPION) if isinstance(model.aliases, dict) else None
        for mv in client.search_model_versions(f"name='{model.name}'", max_results=10_000):
            try:
                run = client.get_run(mv.run_id) if mv.run_id else None
            except MlflowException:
                run = None
            status = "champion" if str(mv.version) == str(champion) else \
                "run deleted" if run is None or run.info.lifecycle_stage == "deleted" else \
                "failed run" if run.info.status != "FINISHED" else "registered"
            rows.append({"model": model.name, "version": int(mv.version), "status": status,
                         "ndcg_at_10": run.data.metrics.get("test_ndcg_at_10") if run else None,
                         "test_years": run.data.params.get("test_years") if run else None,
                         "run_id": mv.run_id, "run_status": run.info.status if run else None,
                         "created": datetime.fromtimestamp(mv.creation_timestamp / 1000, UTC).isoformat(timespec="seconds")})
    return sorted(rows, key=lambda r: (r["model"], -r["version"]))
