"""The model registry's policy: model names, the ``champion`` alias, and loading a champion.

The champion moves to a new version only when it beats the current champion on a comparable
evaluation: the same task definition (horizon, thresholds, minimum value), the same test years,
product level and data bank. Anything else needs ``--promote``.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from models.errors import ModelError
from models.loading import LoadedModel, load_booster
from models.store import Store, as_param

CHAMPION = "champion"
CALIBRATION_FILE = "calibration.json"
COMPARABLE = ("test_years", "horizon", "product_level", "relevance_thresholds", "min_candidate_value_usd", "decision_metric")
"""Run params that must be equal for two test NDCG@10 values to be compared (plus the bank hash)."""


def model_name(task: str, bloc: str) -> str:
    """Registered-model name: ``import-substitution-SCO``; custom blocs use their stable short name."""
    return f"{task}-{bloc}"


NOT_FOUND = {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}
"""Error codes with which a store says "no such model or alias"; any other error is the store's, not a missing champion."""


def current_champion(client: MlflowClient, name: str):
    """The champion version of ``name``; None only when the store says there is none.

    A store that cannot answer (a team server whose database is down, a server that stopped)
    raises: it must never read as "no champion, train one first".
    """
    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException as exc:
        if exc.error_code in NOT_FOUND:
            return None
        raise


PROMOTE_TAG = "promote"
"""Model-version tag set to ``forced`` by ``train --promote``: the replay makes such a version champion."""
SETTLE_ATTEMPTS = 50


@dataclass(frozen=True)
class _Candidate:
    version: str
    score: float
    params: dict
    bank: str | None
    forced: bool


def _candidate(client: MlflowClient, mv) -> _Candidate | None:
    """A registered version as the rule sees it; None if its run failed, was deleted or has no test score."""
    try:
        run = client.get_run(mv.run_id)
    except MlflowException:
        return None
    score = run.data.metrics.get(f"test_{run.data.params.get('decision_metric', 'ndcg_at_10')}")
    if run.info.lifecycle_stage == "deleted" or run.info.status in ("FAILED", "KILLED") or score is None:
        return None
    return _Candidate(str(mv.version), score, run.data.params, run.data.tags.get("bank_manifest_hash"),
                      (mv.tags or {}).get(PROMOTE_TAG) == "forced")


def _metric(candidate: _Candidate) -> str:
    """How the rule names the score it compares: ``NDCG@10``, or ``pooled AP`` for diversification."""
    return {"ndcg_at_10": "NDCG@10", "pooled_ap": "pooled AP"}.get(candidate.params.get("decision_metric", "ndcg_at_10"), "score")


def _challenge(champion: _Candidate | None, new: _Candidate) -> tuple[bool, str]:
    """The rule for one challenger: (does ``new`` take the alias from ``champion``, and why)."""
    if champion is None:
        return True, "no champion yet"
    if new.forced:
        return True, "forced"
    differs = [k for k in COMPARABLE if k in new.params and champion.params.get(k) != new.params[k]]
    if champion.bank != new.bank:
        differs.append("data bank")
    if differs:
        return False, (f"its {', '.join(differs)} differ from champion version {champion.version}'s, so its test score "
                       f"{champion.score:.4f} is not comparable with {new.score:.4f}; use --promote to replace it")
    if new.score > champion.score:
        return True, f"{_metric(new)} {new.score:.4f} beats version {champion.version}'s {champion.score:.4f} on the same test years"
    return False, f"{_metric(new)} {champion.score:.4f} of champion version {champion.version} ≥ version {new.version}'s {new.score:.4f}"


def _versions(client: MlflowClient, name: str) -> list:
    return sorted(client.search_model_versions(f"name='{name}'", max_results=10_000), key=lambda mv: int(mv.version))


def settle_champion(client: MlflowClient, name: str) -> tuple[str | None, dict[str, tuple[bool, str]]]:
    """Apply the champion rule to every version registered after the current champion, in version order.

    Lock-free and safe when several analysts finish ``train`` at once against one tracking server:
    each process replays the rule from the current champion over the newer versions, sets the
    alias to the result, then reads the registry again and repeats until the alias and the set of
    versions are what it decided from. The last write is then always followed by a check that saw
    every version, so the registry ends with exactly one champion: the one the rule gives when the
    trainings are taken one after the other in version order (tested with concurrent processes).
    Returns the champion and, per replayed version, (took the alias, why).
    """
    for _ in range(SETTLE_ATTEMPTS):
        current = current_champion(client, name)
        versions = _versions(client, name)
        start = int(current.version) if current is not None else 0
        champion = _candidate(client, current) if current is not None else None
        verdicts: dict[str, tuple[bool, str]] = {}
        for mv in versions:
            if int(mv.version) <= start or (new := _candidate(client, mv)) is None:
                continue
            verdicts[new.version] = _challenge(champion, new)
            if verdicts[new.version][0]:
                champion = new
        target = champion.version if champion is not None else None
        if target is not None and (current is None or str(current.version) != target):
            client.set_registered_model_alias(name, CHAMPION, target)
        after = current_champion(client, name)
        if ([mv.version for mv in _versions(client, name)] == [mv.version for mv in versions]
                and (str(after.version) if after else None) == target):
            return target, verdicts
    raise ModelError(f"the champion of {name} did not settle after {SETTLE_ATTEMPTS} attempts: "
                     "too many trainings finishing at once; run `recommender models` to check it")


def decide_champion(client: MlflowClient, name: str, version: str, force: bool) -> tuple[bool, str]:
    """Register ``version``'s claim and settle the champion (:func:`settle_champion`); (promoted, why)."""
    if force:
        client.set_model_version_tag(name, version, PROMOTE_TAG, "forced")
    champion, verdicts = settle_champion(client, name)
    if version not in verdicts:  # a training finishing at the same moment already judged this version
        own = _candidate(client, client.get_model_version(name, version))
        best = _candidate(client, client.get_model_version(name, champion)) if champion is not None else None
        verdicts[version] = _challenge(best, own) if own and best else (False, "its run has no test score")
    took, why = verdicts[version]
    if champion == version:
        return True, f"version {version} is now champion of {name} ({why})"
    if took:
        return False, (f"version {version} of {name} won against the champion it saw ({why}), but version "
                       f"{champion} finished after it and beat it: version {champion} is champion")
    return False, f"champion stays version {champion} of {name}: {why}"


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
