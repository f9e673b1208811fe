"""MLflow tracking: one experiment per task, a run per training, registered models, the champion alias.

Everything is computed before the run is opened; the run is then logged in one go. If logging
fails part-way, the run and any model version it registered are deleted, so the tracking store
is never left half-updated.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import lightgbm as lgb
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature

from features.registry import describe
from models.loading import load_booster
from models.train import Evaluation
from recommender import __version__
from recommender.config import Bloc, Config
from recommender.errors import RecommenderError

CHAMPION = "champion"


def client_for(cfg: Config) -> MlflowClient:
    """Point MLflow at the project's store (a SQLite file under the home by default)."""
    cfg.home.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(cfg.mlflow_uri)
    mlflow.set_registry_uri(cfg.mlflow_uri)
    return MlflowClient(tracking_uri=cfg.mlflow_uri, registry_uri=cfg.mlflow_uri)


def experiment_id(client: MlflowClient, name: str, cfg: Config) -> str:
    """The experiment ``name``, created with its artifacts under the home if new."""
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    location = (cfg.artifact_root / name).absolute().as_uri()
    note = (f"Batch scoring runs of the {name.removesuffix('-scoring')} task." if name.endswith("-scoring")
            else f"LightGBM rankers for the {name} task, evaluated against baselines.")
    # the experiment kind makes the MLflow 3 UI open on the training runs, not the GenAI overview
    return client.create_experiment(name, artifact_location=location,
                                    tags={"mlflow.note.content": note, "mlflow.experimentKind": "custom_model_development"})


def model_name(task: str, bloc: Bloc) -> str:
    """Registered-model name: ``import-substitution-SCO``; custom blocs use their stable short name."""
    return f"{task}-{bloc.name}"


def as_param(value) -> str:
    """How a value is stored as an MLflow param (lists and dicts as JSON), for logging and comparing."""
    return json.dumps(value) if isinstance(value, list | dict) else str(value)


def code_version() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"{__version__}+{sha}" if sha else __version__


# ---- figures -------------------------------------------------------------------------------------
def _figure_importance(model: lgb.LGBMRanker, path: Path, top: int = 25) -> None:
    gain = pd.Series(model.booster_.feature_importance("gain"), index=model.booster_.feature_name()).sort_values()
    gain = gain.tail(top)
    fig, ax = plt.subplots(figsize=(8, 0.3 * len(gain) + 1.5))
    ax.barh(gain.index, gain.to_numpy() / max(gain.sum(), 1e-12), color="#3b6ea8")
    ax.set_xlabel("share of total gain (top features)")
    ax.set_title("Feature importance (gain)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _figure_vs_baselines(evaluation: Evaluation, path: Path) -> None:
    table = evaluation.table("ndcg_at_10")["overall"].sort_values()
    colors = ["#d9822b" if name == "model" else "#8a9bb0" for name in table.index]
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(table) + 1.5))
    ax.barh(table.index, table.to_numpy(), color=colors)
    for y, v in enumerate(table.to_numpy()):
        ax.text(v, y, f" {v:.3f}", va="center")
    ax.set_xlabel(f"NDCG@10 on test years {', '.join(map(str, evaluation.test_years))}")
    ax.set_title("Model vs baselines")
    ax.set_xlim(0, max(1.0, table.max() * 1.15))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _figure_by_year(evaluation: Evaluation, path: Path) -> None:
    table = evaluation.table("ndcg_at_10").drop(columns="overall")
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, row in table.iterrows():
        ax.plot([int(c) for c in row.index], row.to_numpy(), marker="o", lw=2.5 if name == "model" else 1, label=name)
    ax.set_xlabel("test year")
    ax.set_ylabel("NDCG@10")
    ax.set_title("Metric by test year")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _per_year_table(evaluation: Evaluation) -> pd.DataFrame:
    rows = []
    for fold in evaluation.folds:
        for scorer, report in fold.metrics.items():
            rows.append({"test_year": fold.test_year, "scorer": scorer, **report})
    for scorer, report in evaluation.overall.items():
        rows.append({"test_year": "overall", "scorer": scorer, **report})
    return pd.DataFrame(rows)


# ---- logging -----------------------------------------------------------------------------------------
@dataclass
class RunRecord:
    run_id: str
    experiment_id: str
    model_name: str
    version: str
    promoted: bool
    decision: str


def log_training(
    cfg: Config,
    *,
    task: str,
    bloc: Bloc,
    evaluation: Evaluation,
    model: lgb.LGBMRanker,
    train_table: pd.DataFrame,
    top_recommendations: pd.DataFrame,
    params: dict,
    manifest_hash: str,
    experiment: str | None = None,
    force_promote: bool = False,
) -> RunRecord:
    """Log a finished training as one MLflow run, register the model, decide the champion."""
    client = client_for(cfg)
    exp_id = experiment_id(client, experiment or task, cfg)
    name = model_name(task, bloc)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
    model_score = evaluation.overall["model"]["ndcg_at_10"]
    base_name, base_score = evaluation.best_baseline
    description = (f"{task} for {bloc.name} ({', '.join(bloc.members)}), horizon {params['horizon']} years, test years "
                   f"{', '.join(map(str, evaluation.test_years))}. NDCG@10: model {model_score:.3f} vs best baseline "
                   f"{base_name} {base_score:.3f}.")
    run_id, version = None, None
    try:
        with warnings.catch_warnings(), mlflow.start_run(experiment_id=exp_id, run_name=f"{task} · {bloc.name} · {stamp}", description=description,
                              tags={"task": task, "bloc": bloc.name, "bank_manifest_hash": manifest_hash,
                                    "code_version": code_version()}) as run:
            run_id = run.info.run_id
            mlflow.log_params({**{k: as_param(v) for k, v in params.items()},
                               **{f"lgbm_{k}": as_param(v) for k, v in evaluation.params.items() if k != "tuning_note"},
                               "best_iteration": evaluation.best_iteration, "n_features": len(evaluation.features)})
            for scorer, report in evaluation.overall.items():
                prefix = "" if scorer == "model" else f"baseline_{scorer}_"
                mlflow.log_metrics({f"{prefix}test_{k}": v for k, v in report.items() if np.isfinite(v)})
            for fold in evaluation.folds:
                for scorer, report in fold.metrics.items():
                    prefix = "" if scorer == "model" else f"baseline_{scorer}_"
                    mlflow.log_metrics({f"{prefix}test_{k}_by_year": v for k, v in report.items() if np.isfinite(v)}, step=fold.test_year)
            labelled = train_table[train_table["relevance"].notna()]
            warnings.filterwarnings("ignore", category=UserWarning, module=r"mlflow\..*")  # schema/source hints
            mlflow.log_input(mlflow.data.from_pandas(labelled, name=f"{task}-{bloc.name}-candidates", targets="relevance",
                                                     source=str(cfg.bank_dir)), context="training")
            test = evaluation.predictions
            mlflow.log_input(mlflow.data.from_pandas(test.drop(columns=[c for c in test if c.startswith("score_")]),
                                                     name=f"{task}-{bloc.name}-test", targets="relevance", source=str(cfg.bank_dir)),
                             context="test")
            with tempfile.TemporaryDirectory() as tmp:
                folder = Path(tmp)
                _figure_importance(model, folder / "feature_importance.png")
                _figure_vs_baselines(evaluation, folder / "model_vs_baselines.png")
                _figure_by_year(evaluation, folder / "metric_by_year.png")
                _per_year_table(evaluation).to_csv(folder / "per_year_metrics.csv", index=False)
                top_recommendations.to_csv(folder / "top_test_recommendations.csv", index=False)
                pd.DataFrame(describe(evaluation.features)).to_csv(folder / "features.csv", index=False)
                mlflow.log_artifacts(tmp)
            sample = labelled[evaluation.features].head(200).astype("float64")  # features are real-valued, NaN allowed
            info = mlflow.lightgbm.log_model(  # the native booster: portable, no pickled Python classes
                model.booster_, name="model", registered_model_name=name,
                signature=infer_signature(sample, model.predict(sample)), input_example=sample.head(5),
                metadata={"task": task, "bloc": bloc.name, "features": evaluation.features})
            version = str(info.registered_model_version)
            promoted, decision = _decide_champion(client, name, version, evaluation, params, force_promote)
            mlflow.set_tag("champion_decision", decision)
    except BaseException:
        if version is not None:
            _quietly(lambda: client.delete_model_version(name, version))
        if run_id is not None:
            _quietly(lambda: client.delete_run(run_id))
        raise
    return RunRecord(run_id, exp_id, name, version, promoted, decision)


def _quietly(fn) -> None:
    try:
        fn()
    except Exception:
        pass


def _decide_champion(client: MlflowClient, name: str, version: str, evaluation: Evaluation, params: dict, force: bool) -> tuple[bool, str]:
    """Move ``champion`` to ``version`` only if it beats the champion on the same test years."""
    new = evaluation.overall["model"]["ndcg_at_10"]
    try:
        current = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        current = None
    if current is None or force:
        client.set_registered_model_alias(name, CHAMPION, version)
        why = "forced" if force and current is not None else "no champion yet"
        return True, f"version {version} is now champion of {name} ({why}; test NDCG@10 {new:.4f})"
    old_run = client.get_run(current.run_id)
    comparable = all(old_run.data.params.get(k) == as_param(params[k]) for k in ("test_years", "horizon", "product_level"))
    old = old_run.data.metrics.get("test_ndcg_at_10", float("nan"))
    if not comparable:
        return False, (f"champion stays version {current.version} of {name}: its test years / horizon / product level differ "
                       f"({old_run.data.params.get('test_years')}), so NDCG@10 {old:.4f} is not comparable with {new:.4f}; "
                       "use --promote to replace it")
    if new > old:
        client.set_registered_model_alias(name, CHAMPION, version)
        return True, f"version {version} is now champion of {name}: NDCG@10 {new:.4f} beats version {current.version}'s {old:.4f} on the same test years"
    return False, f"champion stays version {current.version} of {name}: NDCG@10 {old:.4f} ≥ new version {version}'s {new:.4f}"


def load_champion(cfg: Config, task: str, bloc: Bloc, model_uri: str | None = None) -> tuple[lgb.Booster, str, dict]:
    """The champion (or ``model_uri``, from this store only) as a native booster, its label and its run's params."""
    client = client_for(cfg)
    name = model_name(task, bloc)
    if model_uri is None:
        try:
            mv = client.get_model_version_by_alias(name, CHAMPION)
        except MlflowException as exc:
            raise RecommenderError(
                f"no champion model {name!r} in {cfg.mlflow_uri}; train one first: recommender train --task {task} --bloc {bloc.name}"
            ) from exc
        loaded = load_booster(client, f"models:/{name}/{mv.version}", label=f"{name}/{mv.version}")
    else:
        loaded = load_booster(client, model_uri)
    params = client.get_run(loaded.run_id).data.params if loaded.run_id else {}
    return loaded.booster, loaded.label, params


def run_summary(client: MlflowClient, run_id: str) -> tuple[dict[str, dict[str, float]], dict[int, dict[str, float]]]:
    """(overall metrics by scorer, NDCG@10 by test year and scorer) read back from a training run."""
    metrics = client.get_run(run_id).data.metrics
    overall: dict[str, dict[str, float]] = {}
    by_year: dict[int, dict[str, float]] = {}
    for key, value in metrics.items():
        scorer, rest = ("model", key) if key.startswith("test_") else (key[len("baseline_"):].split("_test_")[0], "test_" + key.split("_test_", 1)[-1])
        if not rest.startswith("test_"):
            continue
        name = rest[len("test_"):]
        if name == "ndcg_at_10_by_year":
            for m in client.get_metric_history(run_id, key):
                by_year.setdefault(int(m.step), {})[scorer] = m.value
        elif not name.endswith("_by_year"):
            overall.setdefault(scorer, {})[name] = value
    return overall, by_year


def reusable_champion(cfg: Config, task: str, bloc: Bloc, manifest_hash: str, params: dict) -> str | None:
    """The champion's run id if it was trained on exactly this bank with these task parameters."""
    client = client_for(cfg)
    try:
        mv = client.get_model_version_by_alias(model_name(task, bloc), CHAMPION)
    except MlflowException:
        return None
    run = client.get_run(mv.run_id)
    same = run.data.tags.get("bank_manifest_hash") == manifest_hash and all(run.data.params.get(k) == as_param(v) for k, v in params.items())
    return mv.run_id if same else None
