"""MLflow tracking of a training: one run per training, logged in one go, registered, champion decided.

Everything is computed before the run is opened; the run is then logged in one go. If logging
fails part-way, the run and any model version it registered are deleted, so the tracking store
is never left half-updated.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.data.digest_utils import MAX_ROWS, get_normalized_md5_digest
from mlflow.entities import Metric
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature

from features.registry import describe
from models import charts
from models.champion import CALIBRATION_FILE, decide_champion, model_name
from models.errors import ModelError
from models.evaluation import MODEL_SCORERS, Evaluation
from models.store import USERNAME_ENV, Store, as_param

PACKAGE = "industrial-cooperation-recommender"


def package_version() -> str:
    """The installed package's version (pyproject.toml is its one source)."""
    try:
        return version(PACKAGE)
    except PackageNotFoundError:
        return "0+unknown"


def code_version() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"{package_version()}+{sha}" if sha else package_version()


def _per_year_table(evaluation: Evaluation) -> pd.DataFrame:
    rows = []
    for fold in evaluation.folds:
        for scorer, report in fold.metrics.items():
            rows.append({"test_year": fold.test_year, "scorer": scorer, **report})
    for scorer, report in evaluation.overall.items():
        rows.append({"test_year": "overall", "scorer": scorer, **report})
    return pd.DataFrame(rows)


@dataclass
class RunRecord:
    run_id: str
    experiment_id: str
    model_name: str
    version: str
    promoted: bool
    decision: str


def log_training(
    store: Store,
    *,
    task: str,
    bloc: str,
    bloc_members: list[str],
    evaluation: Evaluation,
    model: lgb.Booster,
    train_table: pd.DataFrame,
    top_recommendations: pd.DataFrame,
    params: dict,
    manifest_hash: str,
    data_source: str = "",
    experiment: str | None = None,
    force_promote: bool = False,
) -> RunRecord:
    """Log a finished training as one MLflow run, register the model, decide the champion."""
    exp_id = store.experiment_id(experiment or task, f"LightGBM rankers for the {task} task, evaluated against baselines.")
    fail_orphans(store.client(), exp_id)
    name = model_name(task, bloc)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
    metric = {"ndcg_at_10": "NDCG@10", "pooled_ap": "pooled AP"}.get(evaluation.decision_metric, evaluation.decision_metric)
    model_score = evaluation.overall["model"][evaluation.decision_metric]
    base_name, base_score = evaluation.best_baseline
    description = (f"{task} for {bloc} ({', '.join(bloc_members)}), horizon {params['horizon']} years, test years "
                   f"{', '.join(map(str, evaluation.test_years))}. {metric}: model {model_score:.3f} vs best baseline "
                   f"{base_name} {base_score:.3f}.")
    run_id, version = None, None
    try:
        with warnings.catch_warnings(), store.active() as client, mlflow.start_run(
                experiment_id=exp_id, run_name=f"{task} · {bloc} · {stamp}", description=description,
                tags={"task": task, "bloc": bloc, "bank_manifest_hash": manifest_hash, "code_version": code_version(),
                      "host": socket.gethostname(), "pid": str(os.getpid())}) as run:
            run_id = run.info.run_id
            mlflow.log_params({**{k: as_param(v) for k, v in params.items()},
                               **{f"lgbm_{k}": as_param(v) for k, v in evaluation.params.items() if k != "tuning_note"},
                               "best_iteration": evaluation.best_iteration, "n_features": len(evaluation.features)})
            log_metrics(client, run_id, evaluation)
            labelled = train_table[train_table["relevance"].notna()]
            warnings.filterwarnings("ignore", category=UserWarning, module=r"mlflow\..*")  # schema/source hints
            mlflow.log_input(dataset(labelled, f"{task}-{bloc}-candidates", data_source), context="training")
            test = evaluation.predictions
            mlflow.log_input(dataset(test.drop(columns=[c for c in test if c.startswith("score_")]), f"{task}-{bloc}-test",
                                     data_source), context="test")
            with tempfile.TemporaryDirectory() as tmp:
                folder = Path(tmp)
                charts.feature_importance(model, folder / "feature_importance.png")
                charts.model_vs_baselines(evaluation, folder / "model_vs_baselines.png")
                charts.metric_by_year(evaluation, folder / "metric_by_year.png")
                if "reliability" in evaluation.extra:
                    charts.reliability(evaluation.extra["reliability"], folder / "reliability.png")
                if "calibration" in evaluation.extra:
                    (folder / CALIBRATION_FILE).write_text(json.dumps(evaluation.extra["calibration"]))
                for file, table in evaluation.extra.get("tables", {}).items():
                    table.to_csv(folder / file, index=False)
                _per_year_table(evaluation).to_csv(folder / "per_year_metrics.csv", index=False)
                top_recommendations.to_csv(folder / "top_test_recommendations.csv", index=False)
                pd.DataFrame(describe(evaluation.features)).to_csv(folder / "features.csv", index=False)
                mlflow.log_artifacts(tmp)
            sample = labelled[evaluation.features].head(200).astype("float64")  # features are real-valued, NaN allowed
            info = mlflow.lightgbm.log_model(  # the native booster: portable, no pickled Python classes
                model, name="model",
                signature=infer_signature(sample, model.predict(sample)), input_example=sample.head(5),
                # stated, not inferred: inference re-imports the model in a subprocess (~7 s a training)
                pip_requirements=mlflow.lightgbm.get_default_pip_requirements(),
                metadata={"task": task, "bloc": bloc, "features": evaluation.features})
            version = register(client, name, info, run_id)
            promoted, decision = decide_champion(client, name, version, force_promote)
            mlflow.set_tag("champion_decision", decision)
    except BaseException as exc:
        client = store.client()
        if version is not None:
            _quietly(lambda: client.delete_model_version(name, version))
        removed = run_id is None
        if run_id is not None:
            try:
                client.delete_run(run_id)
                removed = True
            except Exception:  # e.g. a team server lets only an experiment's managers delete runs
                pass  # the run was closed as FAILED when its block exited
        if getattr(exc, "error_code", None) == "PERMISSION_DENIED":
            raise _denied(store, experiment or task, name, run_id, removed) from None
        raise
    return RunRecord(run_id, exp_id, name, version, promoted, decision)


def _denied(store: Store, experiment: str, name: str, run_id: str | None, removed: bool) -> ModelError:
    """The one sentence for a 403 from the tracking server while logging or registering."""
    user = os.environ.get(USERNAME_ENV) or "(no user)"
    if run_id is None:
        return ModelError(f"user {user!r} may not log runs in the experiment {experiment!r} on {store.tracking_uri} "
                          f"(READ at most); an admin can grant EDIT: `recommender users grant {user} --experiment "
                          f"{experiment} --permission EDIT`")
    return ModelError(f"user {user!r} may not add versions to the model {name!r} or move its champion on "
                      f"{store.tracking_uri} (READ at most), so the registry is unchanged and the run was "
                      f"{'removed' if removed else 'closed as FAILED'}; "
                      f"its owner or an admin can grant EDIT: `recommender users grant {user} --model {name} "
                      "--permission EDIT`")


def log_metrics(client: MlflowClient, run_id: str, evaluation: Evaluation, batch: int = 1000) -> None:
    """Every metric of the run in as few requests as MLflow allows (1,000 per batch): overall ones at
    step 0, per-test-year ones (``*_by_year``) with the year as step. Against a team server each request
    costs a round trip, and one call per scorer and fold made ~55 of them."""
    now = int(datetime.now(UTC).timestamp() * 1000)
    values = [(k, v, 0) for k, v in evaluation.extra.get("metrics", {}).items()]
    for scorer, report in evaluation.overall.items():
        values += [(f"{metric_prefix(scorer)}test_{k}", v, 0) for k, v in report.items()]
    for fold in evaluation.folds:
        for scorer, report in fold.metrics.items():
            values += [(f"{metric_prefix(scorer)}test_{k}_by_year", v, fold.test_year) for k, v in report.items()]
    metrics = [Metric(key, float(v), now, int(step)) for key, v, step in values if np.isfinite(v)]
    for start in range(0, len(metrics), batch):
        client.log_batch(run_id, metrics=metrics[start:start + batch], synchronous=True)


def dataset(frame: pd.DataFrame, name: str, source: str = "") -> mlflow.data.pandas_dataset.PandasDataset:
    """An MLflow dataset of ``frame`` (targets ``relevance``), its schema inferred from a small faithful sample.

    MLflow infers a dataset's schema value by value, seconds on a training table. The first rows plus, for
    each column with missing values, its first missing row have the same column types and the same
    required/optional flags, so the schema is identical (tested) at a fraction of the cost.
    """
    out = mlflow.data.from_pandas(frame, name=name, targets="relevance", source=source, digest=pandas_digest(frame))
    missing = frame.isna()
    rows = np.union1d(np.arange(min(len(frame), 100)), missing.to_numpy().argmax(axis=0)[missing.any().to_numpy()])
    out.__dict__["schema"] = mlflow.data.from_pandas(frame.iloc[rows]).schema  # fills the cached_property
    return out


def pandas_digest(frame: pd.DataFrame) -> str:
    """MLflow's dataset digest (``mlflow.data.digest_utils.compute_pandas_digest``), the same string, faster.

    MLflow finds the string columns with ``type()`` of every value of the whole frame, not of the
    10,000 rows it then hashes: 31 s of a 9-minute BACI-width training. Here pandas' own type inference
    decides the same per column (all values ``str``, no missing value); the rest is MLflow's (tested equal).
    """
    def all_str(column: pd.Series) -> bool:
        if isinstance(column.dtype, pd.StringDtype):
            return not column.isna().any()
        if isinstance(column.dtype, pd.CategoricalDtype):  # MLflow maps the categories
            return pd.api.types.infer_dtype(column.cat.categories, skipna=False) == "string" and not column.isna().any()
        return column.dtype == object and pd.api.types.infer_dtype(column, skipna=False) == "string"

    head = frame.head(MAX_ROWS)
    strings = head.columns[np.array([all_str(frame[c]) for c in frame.columns], dtype=bool)]
    head = head[strings.union(head.select_dtypes(include=[np.number]).columns)]
    return get_normalized_md5_digest([pd.util.hash_pandas_object(head).values, np.int64(len(frame))]
                                     + [str(x).encode() for x in frame.columns])


def _quietly(fn) -> None:
    try:
        fn()
    except Exception:
        pass


def fail_orphans(client: MlflowClient, experiment_id: str) -> list[str]:
    """Mark FAILED the runs left RUNNING by a training process of this host that no longer exists (killed, or
    unable to close its run because the store's disk was full)."""
    host, failed = socket.gethostname(), []
    for run in client.search_runs([experiment_id], filter_string="attributes.status = 'RUNNING'", max_results=200):
        pid = run.data.tags.get("pid", "")
        if run.data.tags.get("host") == host and pid.isdigit() and not _alive(int(pid)):
            client.set_terminated(run.info.run_id, status="FAILED")
            client.set_tag(run.info.run_id, "failure", "the training process ended without closing its run (killed, or its store's disk was "
                           "full); marked FAILED by the next run")
            failed.append(run.info.run_id)
    return failed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def register(client: MlflowClient, name: str, info, run_id: str) -> str:
    """Register a logged model as a new version of ``name`` through the client (no console chatter)."""
    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name)
    return str(client.create_model_version(name, source=info.model_uri, run_id=run_id, model_id=info.model_id).version)


def metric_prefix(scorer: str) -> str:
    """MLflow metric prefix of a scorer: none for the model, ``<ablation>_`` for it, ``baseline_<name>_`` otherwise."""
    return "" if scorer == "model" else f"{scorer}_" if scorer in MODEL_SCORERS else f"baseline_{scorer}_"


def _scorer_of(key: str) -> tuple[str, str] | None:
    """``baseline_momentum_test_ndcg_at_10`` → ("momentum", "ndcg_at_10"); None for other metrics."""
    head, sep, name = key.partition("test_")
    if not sep:
        return None
    if head == "":
        return "model", name
    if head.startswith("baseline_"):
        return head[len("baseline_"):-1], name
    return (head[:-1], name) if head[:-1] in MODEL_SCORERS else None


def run_summary(client: MlflowClient, run_id: str, metric: str = "ndcg_at_10") -> tuple[dict[str, dict[str, float]], dict[int, dict[str, float]]]:
    """(overall metrics by scorer, ``metric`` by test year and scorer) read back from a training run."""
    overall: dict[str, dict[str, float]] = {}
    by_year: dict[int, dict[str, float]] = {}
    for key, value in client.get_run(run_id).data.metrics.items():
        parsed = _scorer_of(key)
        if parsed is None:
            continue
        scorer, name = parsed
        if name == f"{metric}_by_year":
            for m in client.get_metric_history(run_id, key):
                by_year.setdefault(int(m.step), {})[scorer] = m.value
        elif not name.endswith("_by_year"):
            overall.setdefault(scorer, {})[name] = value
    return overall, by_year
