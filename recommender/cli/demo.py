"""``recommender demo``: the main job on the embedded synthetic world."""

from __future__ import annotations

from typing import Annotated

import typer

from recommender.bank import DataBank, summary
from recommender.cli._common import config, console
from recommender.cli.bank import print_info
from recommender.cli.recommend import print_recommendations
from recommender.cli.train import print_summary, print_uncertainty

DEMO_COUNTRY = "KAZ"


def demo(
    ctx: typer.Context,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic world")] = 0,
    size: Annotated[str, typer.Option(help="World size: tiny (seconds) or demo")] = "demo",
) -> None:
    """Build the synthetic world, ingest it, train both tasks, show results and recommendations.

    Idempotent: a second run finds the same bank and the champions trained on it, and reuses them.
    """
    from models.tasks import DIVERSIFICATION, TASKS
    from models.tracking import run_summary
    from recommender.bank.synthetic import WorldSpec
    from recommender.demo import build_demo_bank, train_or_reuse
    from recommender.outputs.recommend import recommend

    presets = {"tiny": WorldSpec.tiny, "demo": WorldSpec.demo}
    if size not in presets:
        raise typer.BadParameter(f"--size must be one of {sorted(presets)}; got {size!r}")
    spec = presets[size](seed=seed)
    horizon = 3 if size == "tiny" else 5
    cfg = config(ctx)
    console.print(f"[bold]1. Synthetic world[/] (seed {seed}) → data bank at {cfg.bank_dir}")
    for line in build_demo_bank(cfg, spec=spec):
        console.print(f"   {line}")
    print_info(summary(DataBank(cfg.bank_dir)), brief=True)
    client = cfg.store.client()
    for n, task in enumerate(TASKS, start=2):
        # diversification's candidates need two years of history: on the tiny world it looks 2 years ahead
        task_horizon = min(horizon, 2) if task == DIVERSIFICATION and size == "tiny" else horizon
        console.print(f"\n[bold]{n}. Train {task}[/] for {cfg.bloc.name} (horizon {task_horizon} years)")
        run_id, note = train_or_reuse(cfg, task, horizon=task_horizon, log=lambda msg: console.print(f"   {msg}"))
        console.print(f"   {note}")
        metric = TASKS[task].decision_metric
        overall, by_year = run_summary(client, run_id, metric)
        print_summary(overall, by_year, f"{task} · {cfg.bloc.name}: model vs baselines on held-out test years", metric)
        print_uncertainty(client.get_run(run_id).data.metrics, None)
    for task in TASKS:
        console.print(f"\n[bold]Top recommendations for {DEMO_COUNTRY}[/] ({task})")
        table, version = recommend(cfg, task, countries=[DEMO_COUNTRY], top=3)
        print_recommendations(table, task, f"{task} · {cfg.bloc.name} · model {version}")
    from recommender.outputs.brief import write_brief

    path = cfg.home / f"brief-{DEMO_COUNTRY}.html"
    result = write_brief(cfg, DEMO_COUNTRY, path, scenario_cut="ASEAN")
    console.print(f"\n[bold]Brief[/] on {DEMO_COUNTRY} ({result.year}, with a scenario: imports from ASEAN stop): {path}")
    if cfg.store.artifact_root is None:  # a team tracking server serves its own UI
        console.print(f"\nReview the experiments in the MLflow UI of the team server: open {cfg.mlflow_uri}")
    else:
        console.print("\nReview the experiments in the MLflow UI:  [bold]recommender ui[/]  (or `make ui`), then open http://127.0.0.1:5000")
