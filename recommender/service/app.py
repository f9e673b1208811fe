"""The scoring service's web app: ``POST /score`` a projects file, get the scored file back.

``GET /health``
    ``{"status": "ok", "ready": true, "scorers": [...]}`` once the champions named by ``--preload``
    are in memory (``ready`` false before).
``POST /score?task=T[&bloc=B][&year=Y][&reasons=0][&sheet=S][&format=csv|parquet|xlsx]``
    The body is the file (CSV, Parquet or a workbook; ``name=`` its file name, for the suffix and the
    run's name; ``output=`` the name the scored file gets in the run); the answer is the scored file (:func:`recommender.outputs.batch.score_file`, the
    same bytes ``recommender score`` writes) with headers ``X-Recommender-Rows``, ``-Model-Version``,
    ``-Year``, ``-Run-Id`` and ``-Warnings`` (a JSON list). Errors are JSON ``{"error": sentence}``:
    400 for a list that does not validate, 401/403 when the tracking server refuses the analyst,
    413 over ``--max-body-mb``, 503 when the tracking server cannot be reached.

What is kept between requests (:class:`ScoringService`): each champion's booster by version, and a
:class:`~recommender.pipeline.YearScorer` per (bloc, model version, year, bank snapshot), the least
recently used dropped beyond ``--cache``. A new champion or a new bank snapshot is a new key, so no
answer comes from a stale model or bank. MLflow calls (the champion's alias, recording the run) are
made one at a time under the requesting analyst's credentials (:class:`ForwardedCredentials`); the
scoring itself runs concurrently.
"""

from __future__ import annotations

import base64
import json
import logging
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from recommender.config import Config
from recommender.errors import USER_ERRORS
from recommender.service import HEADER_PREFIX

log = logging.getLogger("recommender.service")
AUTH_PROVIDER = "recommender-scoring-service"
INPUT_SUFFIXES = (".csv", ".parquet", ".xlsx", ".xls", ".ods")
FORMATS = {"csv": ".csv", "parquet": ".parquet", "xlsx": ".xlsx"}


class ForwardedCredentials:
    """The credentials of the request being served, for every MLflow call made on its behalf.

    Registered as an MLflow request-auth provider (``MLFLOW_TRACKING_AUTH``): MLflow asks it for the
    auth of each HTTP request it sends, and it answers with the current analyst's Basic credentials.
    Only one request's MLflow calls run at a time (:meth:`acting_for` holds a lock), so "current" is
    never ambiguous, even for the worker threads MLflow starts to move artifacts.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._header: str | None = None

    def get_name(self) -> str:
        return AUTH_PROVIDER

    def get_auth(self):
        header = self._header

        def auth(request):
            if header:
                request.headers["Authorization"] = header
            else:
                request.headers.pop("Authorization", None)
            return request
        return auth

    @contextmanager
    def acting_for(self, header: str | None) -> Iterator[None]:
        """MLflow calls in the block go out with ``header`` (the analyst's ``Authorization``, or none)."""
        with self._lock:
            self._header = header
            try:
                yield
            finally:
                self._header = None

    def install(self) -> None:
        """Make MLflow use this provider in this process (and drop any credentials of the process itself)."""
        import os

        from mlflow.tracking.request_auth.registry import _request_auth_provider_registry

        for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"):
            os.environ.pop(name, None)
        _request_auth_provider_registry._registry.insert(0, self)
        os.environ["MLFLOW_TRACKING_AUTH"] = AUTH_PROVIDER


def basic_header(user: str | None, password: str | None) -> str | None:
    """An ``Authorization: Basic`` value for ``user``/``password`` (None without a user)."""
    if not user:
        return None
    return "Basic " + base64.b64encode(f"{user}:{password or ''}".encode()).decode()


def header_user(header: str | None) -> str | None:
    """The user name of an ``Authorization: Basic`` value (None for anything else)."""
    if not header or not header.startswith("Basic "):
        return None
    try:
        return base64.b64decode(header[6:]).decode().split(":", 1)[0]
    except (ValueError, UnicodeDecodeError):
        return None


@dataclass(frozen=True)
class ScoreRequest:
    task: str
    path: Path  # the uploaded list, under the request's own folder
    output: Path
    bloc: str | None = None
    year: int | None = None
    reasons: bool = True
    sheet: str | None = None
    label: str | None = None  # the analyst's own name for the file (the run's ``input``)
    authorization: str | None = None


@dataclass(frozen=True)
class ScoreReply:
    rows: int
    model_version: str
    year: int
    run_id: str | None
    warnings: list[str]
    seconds: float
    cached: bool


class ScoringService:
    """Champions and year scorers kept in memory; :meth:`score` serves one request."""

    def __init__(self, cfg: Config, *, cache: int = 4, concurrency: int = 8, credentials: ForwardedCredentials | None = None):
        self.cfg, self.cache_size = cfg, max(int(cache), 1)
        self._slots = threading.BoundedSemaphore(max(int(concurrency), 1))  # lists scored at once; the others wait
        self.credentials = credentials or ForwardedCredentials()
        self._models: dict[str, object] = {}  # "name/version" → TrainedModel
        self._scorers: OrderedDict[tuple, object] = OrderedDict()  # (bloc, version, year, snapshot) → YearScorer
        self._building: dict[tuple, threading.Lock] = {}
        self._lock = threading.Lock()
        self.ready = False

    def status(self) -> dict:
        with self._lock:
            scorers = [{"bloc": k[0], "model_version": k[1], "year": s.year, "snapshot": k[3]} for k, s in self._scorers.items()]
        return {"status": "ok", "ready": self.ready, "scorers": scorers}

    def champion(self, cfg: Config, task: str):
        """The task's champion as a :class:`~recommender.pipeline.TrainedModel` (downloaded once per version).

        Called under the analyst's credentials: the alias lookup is what checks READ on the model.
        """
        from models.champion import current_champion, model_name
        from models.errors import ModelError
        from recommender.pipeline import load_model

        name = model_name(task, cfg.bloc.name)
        mv = current_champion(cfg.store.client(), name)
        if mv is None:
            raise ModelError(f"no champion model {name!r} in {cfg.store.tracking_uri}; train one first: "
                             f"recommender train --task {task} --bloc {cfg.bloc.name}")
        label = f"{name}/{mv.version}"
        if label not in self._models:
            self._models[label] = replace(load_model(cfg, task, f"models:/{label}"), version=label)
            for older in [k for k in self._models if k.startswith(name + "/") and k != label]:
                del self._models[older]  # a former champion lives on only in the scorers still cached
        return self._models[label]

    def scorer(self, cfg: Config, model, year: int | None):
        """The year scorer of ``model`` on the bank's live snapshot (built once per key; others wait for it)."""
        from recommender.pipeline import YearScorer, open_bank

        key = (cfg.bloc.name, model.version, year, open_bank(cfg).snapshot_id)
        with self._lock:
            if key in self._scorers:
                self._scorers.move_to_end(key)
                return self._scorers[key], True
            building = self._building.setdefault(key, threading.Lock())
        with building:
            with self._lock:
                if key in self._scorers:
                    return self._scorers[key], True
            started = time.monotonic()
            try:
                scorer = YearScorer(cfg, model, year)
            except BaseException:
                with self._lock:
                    self._building.pop(key, None)
                raise
            log.warning("built the scorer of %s, year %s, snapshot %s in %.1f s", model.version, scorer.year, key[3],
                        time.monotonic() - started)
            with self._lock:
                self._scorers[key] = scorer
                self._building.pop(key, None)
                while len(self._scorers) > self.cache_size:
                    self._scorers.popitem(last=False)
            return scorer, False

    def preload(self, tasks: list[str], authorization: str | None, bloc: str | None = None) -> None:
        """Load the champions of ``tasks`` and build their scorers of the bank's last year (the caller then sets ``ready``)."""
        cfg = self.cfg.with_bloc(bloc)
        for task in tasks:
            with self.credentials.acting_for(authorization):
                model = self.champion(cfg, task)
            self.scorer(cfg, model, None)

    def score(self, request: ScoreRequest) -> ScoreReply:
        from models.tasks import get_task
        from recommender.outputs.batch import record_scoring_run, score_file

        started = time.monotonic()
        get_task(request.task)  # an unknown task is named as such, not as a missing champion
        cfg = self.cfg.with_bloc(request.bloc)
        with self.credentials.acting_for(request.authorization):
            model = self.champion(cfg, request.task)
        scorer, cached = self.scorer(cfg, model, request.year)
        with self._slots:  # each list in flight holds its keys' features (about 1.3 GB per million rows)
            result = score_file(cfg, request.task, request.path, request.output, reasons=request.reasons, track=False,
                                sheet=request.sheet, scorer=scorer)
        with self.credentials.acting_for(request.authorization):
            result.run_id = record_scoring_run(cfg, request.task, request.label or request.path.name, result,
                                               user=header_user(request.authorization))
        return ScoreReply(result.rows, result.model_version, result.year, result.run_id, result.warnings,
                          time.monotonic() - started, cached)


def error_status(exc: BaseException) -> tuple[int, str]:
    """The HTTP status and the one sentence an analyst gets for ``exc``."""
    from models.store import refusal, unreachable

    if isinstance(exc, USER_ERRORS):  # a list that does not validate, an unknown year or task, no champion
        return 400, str(exc)
    message = refusal(exc)
    if message is not None:
        status = getattr(getattr(exc, "response", None), "status_code", None)
        return (status if status in (401, 403, 413) else 403), message
    message = unreachable(exc)
    if message is not None:
        return 503, message
    return 500, f"internal error of the scoring service ({type(exc).__name__}: {exc}); its log has the details"


def create_app(service: ScoringService, *, max_body_bytes: int, work: Path):
    """The Starlette app serving ``service`` (uploads spooled to ``work``, refused beyond ``max_body_bytes``)."""
    from starlette.applications import Starlette
    from starlette.background import BackgroundTask
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import ClientDisconnect, Request
    from starlette.responses import FileResponse, JSONResponse
    from starlette.routing import Route

    work.mkdir(parents=True, exist_ok=True)

    def refuse(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse(service.status())

    async def score(request: Request):
        params = request.query_params
        task = params.get("task", "")
        name = Path(params.get("name") or "projects.csv").name
        suffix = Path(name).suffix.lower()
        if suffix not in INPUT_SUFFIXES:
            return refuse(400, f"{name}: projects must be a .csv, .parquet or .xlsx (.xls, .ods) file")
        fmt = params.get("format", "csv")
        if fmt not in FORMATS:
            return refuse(400, f"format must be one of {', '.join(FORMATS)}; got {fmt!r}")
        year = params.get("year") or None
        if year is not None and not year.isdigit():
            return refuse(400, f"year must be a number; got {year!r}")
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > max_body_bytes:
            return refuse(413, f"the list is {int(declared) / 2**20:,.1f} MB, over this service's limit of "
                               f"{max_body_bytes / 2**20:,.0f} MB (--max-body-mb): split it into smaller files")
        folder = Path(tempfile.mkdtemp(prefix="request-", dir=work))
        written = Path(params.get("output") or f"{Path(name).stem}.scored{FORMATS[fmt]}").name  # the run's artifact is named as the analyst's file
        source, output = folder / "in" / name, folder / Path(written).with_suffix(FORMATS[fmt]).name
        source.parent.mkdir()
        try:
            size = 0
            with open(source, "wb") as f:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > max_body_bytes:
                        raise OverflowError
                    f.write(chunk)
            job = ScoreRequest(task, source, output, bloc=params.get("bloc") or None, year=int(year) if year else None,
                               reasons=params.get("reasons", "1") not in ("0", "false", "no"), sheet=params.get("sheet") or None,
                               label=request.headers.get(HEADER_PREFIX + "Input") or name,
                               authorization=request.headers.get("authorization"))
            reply = await run_in_threadpool(service.score, job)
        except OverflowError:
            shutil.rmtree(folder, ignore_errors=True)
            return refuse(413, f"the list is over this service's limit of {max_body_bytes / 2**20:,.0f} MB (--max-body-mb): "
                               "split it into smaller files")
        except ClientDisconnect:
            shutil.rmtree(folder, ignore_errors=True)
            return refuse(400, "the client disconnected before the whole list arrived; nothing was scored")
        except Exception as exc:  # one sentence for the analyst; the traceback in the service's log
            status, message = error_status(exc)
            if status == 500:
                log.exception("scoring failed")
            shutil.rmtree(folder, ignore_errors=True)
            return refuse(status, message.replace(str(source), name))  # the analyst's file, not the service's copy
        p = HEADER_PREFIX
        headers = {p + "Rows": str(reply.rows), p + "Model-Version": reply.model_version, p + "Year": str(reply.year),
                   p + "Run-Id": reply.run_id or "", p + "Warnings": json.dumps(reply.warnings, ensure_ascii=True),
                   p + "Seconds": f"{reply.seconds:.3f}", p + "Cached": "1" if reply.cached else "0"}
        return FileResponse(output, headers=headers, background=BackgroundTask(shutil.rmtree, folder, True))

    return Starlette(routes=[Route("/health", health), Route("/score", score, methods=["POST"])])
