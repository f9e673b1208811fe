"""``recommender scoring-service``: the resident scoring service (:mod:`recommender.service`)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from recommender.cli._common import TaskName, config, console, console_err, task_name


def scoring_service(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Interface to listen on (loopback by default: the analysts of this machine)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port")] = 5100,
    preload: Annotated[list[TaskName] | None, typer.Option("--preload", help="Load this task's champion and its last-year "
                                                           "candidates before answering (repeat for several); the launcher's "
                                                           "MLFLOW_TRACKING_USERNAME/PASSWORD are used for this only")] = None,
    bloc: Annotated[str | None, typer.Option("--bloc", help="Bloc of --preload (requests name their own)")] = None,
    cache: Annotated[int, typer.Option(min=1, help="Year scorers kept in memory (one per model version, year and bank snapshot)")] = 4,
    concurrency: Annotated[int, typer.Option(min=1, help="Lists scored at once (each holds about 1.3 GB per million rows); "
                                             "more wait their turn")] = 8,
    max_body_mb: Annotated[int, typer.Option("--max-body-mb", min=1, help="Largest list one request may send, in MB (HTTP 413 beyond)")] = 512,
) -> None:
    """Keep champions and the year's candidates in memory and score lists sent by `recommender score --service URL` (Ctrl-C stops)."""
    import logging
    import os

    import uvicorn

    from recommender.service.app import (
        ForwardedCredentials,
        ScoringService,
        basic_header,
        create_app,
    )

    cfg = config(ctx)
    launcher = basic_header(os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD"))
    credentials = ForwardedCredentials()
    credentials.install()  # from here on every MLflow call carries the requesting analyst's credentials, none of ours
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    service = ScoringService(cfg, cache=cache, concurrency=concurrency, credentials=credentials)
    tasks = [task_name(t) for t in preload or []]
    if tasks:
        console_err.print(f"loading {', '.join(tasks)} …", highlight=False)
        service.preload(tasks, launcher, bloc)
    service.ready = True
    app = create_app(service, max_body_bytes=max_body_mb * 2**20, work=cfg.home / "service")
    url = f"http://{host}:{port}"
    console.print(f"scoring service at {url} (Ctrl-C to stop)\n  bank: {cfg.bank_dir}\n  tracking: {cfg.mlflow_uri}\n"
                  f"  analysts: recommender score LIST --task TASK --service {url}  (or RECOMMENDER_SCORING_SERVICE={url})",
                  highlight=False)
    sys.stdout.flush()
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_keep_alive=30)
