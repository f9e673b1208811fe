"""``recommender train``: evaluate a task's ranker against the baselines and register it."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from recommender.cli._common import (
    BlocOption,
    EngineName,
    EngineOption,
    JsonOption,
    SchedulerOption,
    TaskOption,
    choices,
    config,
    console,
    console_err,
    engine,
    print_json,
    task_name,
    value,
)
from recommender.errors import RecommenderError

ProductLevel = choices("ProductLevel", ("2", "4", "6"))


def parse_overrides(pairs: list[str] | None) -> dict:
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep:
            raise RecommenderError(f"--param takes NAME=VALUE (e.g. learning_rate=0.03); got {pair!r}")
        out[key.strip()] = value.strip()
    return out


def parse_years(text: str | None) -> list[int] | None:
    """``"2008,2009"`` → [2008, 2009]; a clear error for anything else."""
    if text is None:
        return None
    try:
        return [int(y) for y in text.split(",")]
    except ValueError as exc:
        raise RecommenderError(f"--test-years takes comma-separated years, e.g. 2008,2009; got {text!r}") from exc


def parse_thresholds(text: str | None) -> tuple[float, float, float] | None:
    if text is None:
        return None
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError as exc:
        raise RecommenderError(f"--thresholds takes three numbers, e.g. 0.05,0.02,0.005; got {text!r}") from exc
    if len(values) != 3 or not values[0] >= values[1] >= values[2] > 0:
        raise RecommenderError(f"--thresholds needs three positive numbers from high to low; got {text!r}")
    return values


METRIC_LABELS = {"ndcg_at_10": "NDCG@10", "pooled_ap": "pooled AP", "pooled_auc": "pooled AUC"}


def results_table(overall: dict[str, dict[str, float]], by_year: dict[int, dict[str, float]], title: str,
                  metric: str = "ndcg_at_10") -> Table:
    """Scorers (best first by ``metric``) × metrics, with ``metric`` per test year (``by_year``)."""
    metrics = ["ndcg_at_5", "ndcg_at_10", "ndcg_at_20", "map_at_10", "precision_at_10", "auc_pr"]
    if any("pooled_ap" in report for report in overall.values()):
        metrics += ["pooled_ap", "pooled_auc"]
    table = Table(title=title)
    table.add_column("scorer", no_wrap=True, min_width=16)
    for m in metrics:
        label = {"pooled_ap": "pooled AP", "pooled_auc": "pooled AUC"}.get(m)
        table.add_column(label or m.replace("ndcg_at_", "N@").replace("_at_", "@").replace("precision", "P").upper(), justify="right")
    years = sorted(by_year)
    for year in years:
        table.add_column(f"{'N@10' if metric == 'ndcg_at_10' else METRIC_LABELS.get(metric, metric)}\n{year}", justify="right")

    def fmt(value: float | None) -> str:
        return "-" if value is None or value != value else f"{value:.3f}"

    ordered = sorted(overall.items(), key=lambda kv: -(kv[1].get(metric) or 0.0))
    for name, report in ordered:
        table.add_row(name, *(fmt(report.get(m)) for m in metrics), *(fmt(by_year[y].get(name)) for y in years),
                      style="bold" if name == "model" else "")
    return table


def print_summary(overall: dict, by_year: dict, title: str, metric: str = "ndcg_at_10") -> None:
    """The results table and the model against the best baseline on ``metric`` (the task's decision metric)."""
    console.print(results_table(overall, by_year, title, metric))
    from models.evaluation import MODEL_SCORERS

    baselines = {k: v[metric] for k, v in overall.items()
                 if k not in MODEL_SCORERS and v.get(metric) == v.get(metric) and metric in v}
    if baselines and "model" in overall:
        best = max(baselines, key=baselines.get)
        model = overall["model"][metric]
        console.print(f"{METRIC_LABELS.get(metric, metric)}: model {model:.3f} vs best baseline {best} {baselines[best]:.3f} "
                      f"({100 * (model / baselines[best] - 1):+.1f}%)")


DEFAULT_POOL = 0


def print_uncertainty(metrics: dict, intervals) -> None:
    """The lift's bootstrap interval per test year and overall, and the spread over seeds."""
    if (intervals is None or not len(intervals)) and "lift_ci_low" in metrics:
        console.print(f"  lift over the best baseline {100 * metrics['lift_vs_best_baseline']:+.1f}% "
                      f"[95% CI {100 * metrics['lift_ci_low']:+.1f}%, {100 * metrics['lift_ci_high']:+.1f}%] "
                      f"over {int(metrics.get('n_test_queries', 0))} test queries")
    if intervals is not None and len(intervals):
        for _, row in intervals.iterrows():
            label = METRIC_LABELS.get(row.get("metric", "ndcg_at_10"), "NDCG@10")
            unit = "countries" if row.get("metric") == "pooled_ap" else "queries"
            console.print(f"  {row['test_year']:>7}: {label} model − {row['baseline']} = {row['diff']:+.3f} "
                          f"[95% CI {row['diff_low']:+.3f}, {row['diff_high']:+.3f}], lift {100 * row['lift']:+.1f}% "
                          f"[{100 * row['lift_low']:+.1f}%, {100 * row['lift_high']:+.1f}%] over {int(row['queries'])} {unit}")
    if metrics.get("seeds", 0) > 1:
        console.print(f"  model NDCG@10 over {int(metrics['seeds'])} seeds: mean {metrics['seed_ndcg_at_10_mean']:.3f}, "
                      f"sd {metrics['seed_ndcg_at_10_std']:.3f}, range {metrics['seed_ndcg_at_10_min']:.3f}–{metrics['seed_ndcg_at_10_max']:.3f}")


def train(
    ctx: typer.Context,
    task: TaskOption,
    bloc: BlocOption = None,
    horizon: Annotated[int | None, typer.Option(help="Years between candidate and outcome (default 5)")] = None,
    thresholds: Annotated[str | None, typer.Option(help="Relevance thresholds high,mid,low (default 0.05,0.02,0.005 or 0.02,0.005,0.001)")] = None,
    min_value: Annotated[float | None, typer.Option("--min-value", help="Candidate minimum in USD (default 1,000,000 extra-bloc imports / 100,000 two-way trade)")] = None,
    test_years: Annotated[str | None, typer.Option("--test-years", help="Comma-separated test years (default: last two labelled)")] = None,
    experiment: Annotated[str | None, typer.Option(help="MLflow experiment (default: the task name)")] = None,
    seed: Annotated[int, typer.Option(help="Random seed (LightGBM, random baseline)")] = 0,
    product_level: Annotated[ProductLevel | None, typer.Option("--product-level", help="Aggregate HS codes to 2, 4 or 6 digits")] = None,
    param: Annotated[list[str] | None, typer.Option("--param", help="Override a model-spec value: NAME=VALUE (repeatable)")] = None,
    promote: Annotated[bool, typer.Option("--promote", help="Make this version champion whatever the comparison says")] = False,
    seeds: Annotated[int, typer.Option(min=1, help="Seeds per fold, to report the spread of the test metric (the model kept uses --seed)")] = 3,
    pool: Annotated[int, typer.Option(min=0, help="Pseudo-blocs whose candidates join training (0 = the bloc's own only)")] = DEFAULT_POOL,
    tune: Annotated[int, typer.Option(min=0, help="Nested random search over N settings on years before the test years (0 = spec values)")] = 0,
    engine_name: EngineOption = EngineName.local,
    scheduler: SchedulerOption = None,
    as_json: JsonOption = False,
) -> None:
    """Train and evaluate a ranker (rolling origin, vs baselines), log it to MLflow, decide the champion."""
    from recommender.pipeline import train_task

    cfg, task = config(ctx, bloc), task_name(task)
    years = parse_years(test_years)
    out = console_err if as_json else console  # with --json, stdout holds the JSON alone
    out.print(f"[bold]train[/] {task} for {cfg.bloc.name}: {', '.join(cfg.bloc.members)}")
    with engine(engine_name, scheduler) as runner, console_err.status("training...") as status:
        outcome = train_task(cfg, task, horizon=horizon, thresholds=parse_thresholds(thresholds), min_value=min_value, test_years=years, seed=seed, product_level=int(value(product_level)) if product_level else None,
                             overrides=parse_overrides(param), experiment=experiment, promote=promote,
                             seeds=seeds, pool_sets=pool, tune_trials=tune, engine=runner,
                             log=lambda msg: (status.update(msg), out.print(f"  {msg}")))
    ev = outcome.evaluation
    metric = ev.decision_metric
    by_year = {f.test_year: {k: v[metric] for k, v in f.metrics.items()} for f in ev.folds}
    if as_json:
        record = outcome.record
        print_json({"task": task, "bloc": cfg.bloc.name, "run_id": record.run_id, "model": record.model_name,
                    "version": record.version, "promoted": record.promoted, "decision": record.decision,
                    "decision_metric": metric, "test_years": ev.test_years, "overall": ev.overall,
                    "by_year": {str(y): v for y, v in by_year.items()}, "metrics": ev.extra.get("metrics", {}),
                    "panels": {name: panel["overall"] for name, panel in ev.extra.get("panels", {}).items()},
                    "dataset_rows": outcome.dataset_rows})
        return
    print_summary(ev.overall, by_year, f"{task} · {cfg.bloc.name} · test years {', '.join(map(str, ev.test_years))}", metric)
    print_uncertainty(ev.extra.get("metrics", {}), ev.extra.get("tables", {}).get("lift_intervals.csv"))
    for name, panel in ev.extra.get("panels", {}).items():
        console.print(f"\n[bold]{name}[/]: the same fold models on the test candidates of the {panel['queries']} largest "
                      f"exporters ({panel['candidates']:,} candidates)")
        print_summary(panel["overall"], {}, f"{task} · {name} · test years {', '.join(map(str, ev.test_years))}", metric)
        print_uncertainty({}, panel["intervals"])
    console.print(f"MLflow run {outcome.record.run_id}, registered {outcome.record.model_name} version {outcome.record.version}")
    console.print(outcome.record.decision)
