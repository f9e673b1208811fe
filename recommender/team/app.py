"""The team server's web app: MLflow's own (with its basic-auth app under ``--auth``) behind a body-size limit.

``mlflow server --app-name recommender-team`` finds :func:`create_app` through the ``mlflow.app``
entry point this project declares, and each uvicorn worker calls it. Every other request bound is
set elsewhere (rows per scoring list: ``RECOMMENDER_MAX_ROWS``; database time per statement:
``--request-timeout``; requests held at once: uvicorn's ``--limit-concurrency``). This one stops an
upload larger than ``--max-body-mb`` before the server reads it: HTTP 413 with a JSON body that
MLflow's clients turn into an error naming the limit, and nothing of the upload is stored.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Awaitable, Callable
from typing import Any

MAX_BODY_ENV = "RECOMMENDER_SERVER_MAX_BODY_MB"
AUTH_ENV = "RECOMMENDER_SERVER_AUTH"
DEFAULT_MAX_BODY_MB = 1024
"""A model version's files are tens of MB at BACI width; a gigabyte in one request is a mistake or an attack."""
ERROR_CODE = "REQUEST_LIMIT_EXCEEDED"  # MLflow's own code for a request over a limit
CHUNK = 2**20
SPOOL_IN_MEMORY = 8 * 2**20

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class ClientGone(Exception):
    """The client disconnected before its whole body arrived."""


class BodyLimit:
    """ASGI middleware refusing HTTP request bodies over ``max_bytes`` with 413.

    A declared ``Content-Length`` over the limit is refused before the app runs; a body sent without
    one (chunked) is spooled first (:meth:`spool`) and the request refused when it passes the limit.
    """

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], max_bytes: int):
        self.app, self.max_bytes = app, int(max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self.drain(receive)
            await self.refuse(send, int(declared))
            return
        if declared is not None:
            await self.app(scope, receive, send)  # the server reads no more than Content-Length
            return
        try:
            spool, size = await self.spool(receive)
        except ClientGone:  # the client left mid-body: nothing to answer, nothing handed on
            return
        if spool is None:
            await self.refuse(send, size)
            return
        with spool:
            spool.seek(0)
            delivered = False

            async def replayed() -> dict[str, Any]:
                nonlocal delivered
                if delivered:
                    return await receive()  # after the body: disconnect notices pass through
                chunk = spool.read(CHUNK)
                delivered = spool.tell() >= size
                return {"type": "http.request", "body": chunk, "more_body": not delivered}

            await self.app(scope, replayed, send)

    async def spool(self, receive: Receive) -> tuple[tempfile.SpooledTemporaryFile | None, int]:
        """Read a body sent without ``Content-Length`` (chunked) before the app sees any of it.

        Kept in memory up to 8 MB, on disk beyond, and never more than the limit: over it, the spool
        is dropped, the rest of the body read into nothing and ``(None, bytes read)`` returned; a client
        that disconnects first raises :class:`ClientGone`. The app is called only with a whole body,
        so a refused or abandoned upload cannot leave a partial file behind.
        """
        spool, size = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY), 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                spool.close()
                raise ClientGone
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_bytes:
                spool.close()
                if message.get("more_body", False):
                    await self.drain(receive)
                return None, size
            spool.write(body)
            if not message.get("more_body", False):
                break
        return spool, size

    @staticmethod
    async def drain(receive: Receive) -> None:
        """Read the rest of a request body into nothing."""
        while True:
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                return

    async def refuse(self, send: Send, size: int) -> None:
        """Answer 413, once the body has been read into nothing (:meth:`drain`).

        The client is still sending; a server that answers and closes with unread bytes makes the
        kernel reset the connection, and the client sees "connection broken" instead of the answer.
        """
        limit_mb = self.max_bytes / 2**20
        message = (f"the request body ({size / 2**20:,.1f} MB so far or declared) is larger than this team server "
                   f"accepts in one request ({limit_mb:,.0f} MB, `recommender server --max-body-mb`): nothing of it was "
                   "stored; ask the server's admin to raise the limit if the upload is meant to be that large")
        body = json.dumps({"error_code": ERROR_CODE, "message": message}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


def max_body_bytes() -> int:
    """The limit from ``RECOMMENDER_SERVER_MAX_BODY_MB`` (set by ``recommender server``), else the default."""
    return int(float(os.environ.get(MAX_BODY_ENV) or DEFAULT_MAX_BODY_MB) * 2**20)


def create_app() -> BodyLimit:
    """MLflow's tracking server app (basic-auth when ``RECOMMENDER_SERVER_AUTH=1``) wrapped in :class:`BodyLimit`."""
    if os.environ.get(AUTH_ENV) == "1":
        from mlflow.server.auth import create_app as auth_app

        base = auth_app()
    else:
        from mlflow.server.fastapi_app import app as base
    return BodyLimit(base, max_body_bytes())
