"""``recommender score --service URL``: send a list to the scoring service, write the scored file it returns.

Imports neither pandas nor MLflow (the point is to start in a fraction of a second). The list goes as
it is (the service validates it with the same rules as ``recommender score``); the answer is written
to a temporary file beside ``--output`` and renamed into place only when it arrived whole, so a
service that dies mid-answer leaves no output file. The analyst's tracking-server credentials
(``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``) go with the request: the service acts
for them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from recommender.errors import RecommenderError
from recommender.outputs.files import atomic_output, check_output
from recommender.service import HEADER_PREFIX

READ_TIMEOUT = 3600  # a million-row list with reasons takes minutes; the service bounds what one request may be
CONNECT_TIMEOUT = 30


@dataclass
class RemoteResult:
    output: Path
    rows: int
    model_version: str
    year: int
    warnings: list[str]
    run_id: str | None
    seconds: float
    cached: bool


def score_remote(url: str, path: str | Path, output: str | Path, *, task: str, bloc: str | None = None,
                 year: int | None = None, reasons: bool = True, sheet: str | None = None) -> RemoteResult:
    """Score ``path`` on the service at ``url`` and write the answer to ``output`` (whole, or not at all)."""
    import requests

    path, output = Path(path), check_output(output)
    if not path.is_file():
        raise RecommenderError(f"{path} is a folder: name the projects file in it" if path.is_dir() else f"{path}: no such file")
    if output.resolve() == path.resolve():
        raise RecommenderError("--output must differ from the input file")
    params = {"task": task, "name": path.name, "output": output.name, "format": output.suffix.lower().lstrip("."),
              "reasons": "1" if reasons else "0"}
    params.update({k: str(v) for k, v in (("bloc", bloc), ("year", year), ("sheet", sheet)) if v is not None})
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    auth = (user, os.environ.get("MLFLOW_TRACKING_PASSWORD", "")) if user else None
    endpoint = url.rstrip("/") + "/score"
    try:
        with open(path, "rb") as body, requests.post(endpoint, params=params, data=body, auth=auth, stream=True,
                                                     headers={HEADER_PREFIX + "Input": str(path.absolute())},
                                                     timeout=(CONNECT_TIMEOUT, READ_TIMEOUT)) as answer:
            if answer.status_code != 200:
                raise RecommenderError(f"the scoring service at {url} did not score {path.name}: {_message(answer)}")
            with atomic_output(output) as tmp, open(tmp, "wb") as f:
                for chunk in answer.iter_content(1 << 20):
                    f.write(chunk)
            headers = answer.headers
    except requests.exceptions.ConnectionError as exc:
        raise RecommenderError(_unreachable(url, exc)) from None
    except requests.exceptions.Timeout:
        raise RecommenderError(f"the scoring service at {url} gave no answer within {READ_TIMEOUT} s; "
                               "nothing was written") from None
    except requests.exceptions.ChunkedEncodingError:  # the answer stopped before its declared end
        raise RecommenderError(f"the scoring service at {url} stopped in the middle of its answer; nothing was written "
                               "(its log says why); score again once it is back") from None
    p = HEADER_PREFIX
    return RemoteResult(output, int(headers[p + "Rows"]), headers[p + "Model-Version"], int(headers[p + "Year"]),
                        json.loads(headers.get(p + "Warnings") or "[]"), headers.get(p + "Run-Id") or None,
                        float(headers.get(p + "Seconds") or 0), headers.get(p + "Cached") == "1")


def _message(answer) -> str:
    """The service's own sentence (JSON ``error``), or the HTTP status when the answer is not the service's."""
    try:
        return str(answer.json()["error"])
    except (ValueError, KeyError, TypeError):
        return f"HTTP {answer.status_code} {answer.reason} (is {answer.url.split('?')[0]} a recommender scoring service?)"


def _unreachable(url: str, exc: BaseException) -> str:
    text = str(exc)
    if "Connection refused" in text or "Failed to establish" in text or "NameResolution" in text:
        return (f"cannot reach the scoring service at {url} (connection refused); start it with "
                "`recommender scoring-service`, or score without --service. Nothing was written")
    return (f"the scoring service at {url} closed the connection before answering ({type(exc).__name__}); "
            "nothing was written (its log says why); score again once it is back")
