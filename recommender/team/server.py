"""Team mode: one MLflow tracking server on PostgreSQL for a bloc's analysts, built from MLflow's own parts.

``mlflow server`` keeps runs and the model registry in PostgreSQL, serves the artifact store itself
(``--serve-artifacts``: clients never touch the storage) and, with ``--auth``, runs MLflow's
basic-auth app, whose user database lives in the same PostgreSQL database (its own tables).

Secrets never go on a command line or into a log: the backend URI (it may hold the database
password) reaches ``mlflow server`` through its environment, the auth settings through a 0600 file
under the home, and every URI shown to the user is :func:`redact`-ed.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from recommender.errors import RecommenderError
from recommender.team.app import AUTH_ENV, DEFAULT_MAX_BODY_MB, MAX_BODY_ENV

POSTGRES_SCHEMES = ("postgresql", "postgresql+psycopg")
DEFAULT_PORT = 5000
ADMIN_PASSWORD_ENV = "MLFLOW_AUTH_ADMIN_PASSWORD"  # MLflow's own: the admin's password on first start
SECRET_KEY_ENV = "MLFLOW_FLASK_SERVER_SECRET_KEY"  # MLflow's own: signs the auth app's CSRF tokens
AUTH_CACHE_SECONDS = 300
REQUEST_TIMEOUT = 120
"""Seconds one database statement of the server may run (PostgreSQL's ``statement_timeout``): a request
that would hold the database longer (a runs search over everything, a huge metric history) is cancelled
and its caller gets an error instead of the server slowing down for everyone."""
CONCURRENCY_PER_WORKER = 64
"""Requests one server worker holds at once (uvicorn's ``--limit-concurrency``); beyond it the server
answers 503 at once, which MLflow clients retry with backoff, so a burst queues instead of piling up memory."""
APP_NAME = "recommender-team"
"""The ``mlflow.app`` entry point (pyproject.toml) of :func:`recommender.team.app.create_app`: MLflow's app, or
its basic-auth app under ``--auth``, behind the body-size limit. Each worker creates the admin account if it
is missing (MLflow's ``bootstrap_admin_user``, safe when two workers race)."""
MLFLOW_OLD_DEFAULT_PASSWORD = "password1234"  # the basic_auth.ini default of MLflow < 3.x, refused by MLflow now


def redact(uri: str) -> str:
    """``uri`` with any password replaced by ``***`` (for messages and logs)."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def with_statement_timeout(uri: str, seconds: int) -> str:
    """``uri`` with PostgreSQL's ``statement_timeout`` set for every connection made from it (libpq ``options``)."""
    parts = urlsplit(uri)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "options"]
    options = " ".join(v for k, v in parse_qsl(parts.query) if k == "options")
    options = re.sub(r"-c\s*statement_timeout=\S+", "", options).strip()
    query.append(("options", f"{options} -c statement_timeout={int(seconds) * 1000}".strip()))
    return urlunsplit(parts._replace(query=urlencode(query)))


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_postgres(uri: str, timeout: int = 10) -> None:
    """Connect once to the PostgreSQL database of ``uri``; a clear error says what to fix if that fails."""
    scheme = urlsplit(uri).scheme
    if scheme not in POSTGRES_SCHEMES:
        raise RecommenderError(
            f"--backend-store-uri {redact(uri)!r}: team mode keeps its runs and registry in PostgreSQL; "
            "give postgresql://USER[:PASSWORD]@HOST:PORT/DATABASE (the embedded SQLite store needs no server)")
    import sqlalchemy

    engine = _engine(uri, connect_args={"connect_timeout": timeout})
    url = engine.url
    try:
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("select 1"))
    except sqlalchemy.exc.SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        raise RecommenderError(
            f"cannot reach the PostgreSQL database {redact(uri)}: {reason}. Is the server running there "
            f"(`pg_ctl -D DATA status`), does the database exist (`createdb -h {url.host} -p {url.port or 5432} "
            f"-U {url.username} {url.database}`), and are the user and password right (in the URI, "
            "PGPASSWORD or ~/.pgpass)?") from None
    finally:
        engine.dispose()


def check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does: a just-stopped one's port is free
        try:
            s.bind((host, port))
        except OSError as exc:
            raise RecommenderError(f"cannot listen on {host}:{port}: {exc.strerror}; is a server already running "
                                   "there? Choose another --port") from None


@dataclass(frozen=True)
class ServerPlan:
    """The ``mlflow server`` process to become: its argv, its environment, and what to tell the user."""

    argv: list[str]
    env: dict[str, str]
    url: str
    warnings: list[str]


def plan_server(home: Path, backend_store_uri: str, artifacts_destination: str, *, host: str = "127.0.0.1",
                port: int = DEFAULT_PORT, auth: bool = False, admin_username: str = "admin",
                default_permission: str = "READ", workers: int = 2, allowed_hosts: str | None = None,
                request_timeout: int = REQUEST_TIMEOUT, max_body_mb: int = DEFAULT_MAX_BODY_MB) -> ServerPlan:
    """Check the database and write the server's private settings under ``home/server``; nothing is started.

    ``default_permission`` is what a signed-in user may do on experiments and models nobody granted
    them: READ lets every analyst see the bloc's history while only owners (MANAGE, given to whoever
    creates an experiment or model) and those granted EDIT may change it. ``request_timeout`` bounds each
    database statement a request runs (:data:`REQUEST_TIMEOUT`); each worker holds at most
    :data:`CONCURRENCY_PER_WORKER` requests at once, and none may send a body over ``max_body_mb``
    (:mod:`recommender.team.app`, the app every worker serves).
    """
    check_postgres(backend_store_uri)
    backend_store_uri = with_statement_timeout(backend_store_uri, request_timeout)
    check_port_free(host, port)
    folder = home / "server"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    env = {**os.environ, "MLFLOW_BACKEND_STORE_URI": backend_store_uri, SECRET_KEY_ENV: secret_key(folder),
           MAX_BODY_ENV: str(int(max_body_mb)), AUTH_ENV: "1" if auth else "0"}
    env.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    # MLflow's job runner (GenAI evaluation jobs, trace roll-ups) is two more processes this project never uses
    env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    if "://" not in artifacts_destination:
        Path(artifacts_destination).mkdir(parents=True, exist_ok=True)
        artifacts_destination = str(Path(artifacts_destination).absolute())
    argv = [sys.executable, "-m", "mlflow", "server", "--artifacts-destination", artifacts_destination,
            "--serve-artifacts", "--host", host, "--port", str(port), "--workers", str(workers),
            "--uvicorn-opts", f"--limit-concurrency {CONCURRENCY_PER_WORKER}", "--app-name", APP_NAME]
    if allowed_hosts:
        argv += ["--allowed-hosts", allowed_hosts]
    notes = []
    if auth:
        ini = folder / "basic_auth.ini"
        write_private(ini, "[mlflow]\n"
                           f"default_permission = {default_permission}\n"
                           # configparser's interpolation reads % as its own: the URI's %-escapes are doubled
                           f"database_uri = {backend_store_uri.replace('%', '%%')}\n"
                           f"admin_username = {admin_username}\n"
                           "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
                           # MLflow hashes the password on every request (~0.75 s here): a train makes
                           # hundreds. Cache a verified (user, password) for 5 minutes per worker; a
                           # revoked password then stays valid on other workers for at most that long.
                           f"auth_cache_ttl_seconds = {AUTH_CACHE_SECONDS}\n")
        env["MLFLOW_AUTH_CONFIG_PATH"] = str(ini)
        if os.environ.get(ADMIN_PASSWORD_ENV) == MLFLOW_OLD_DEFAULT_PASSWORD:  # MLflow refuses it with a traceback
            raise RecommenderError(f"{ADMIN_PASSWORD_ENV} holds the default admin password that older MLflow versions "
                                   "shipped, which MLflow refuses (GHSA-gq3w-7jj3-x7gr): set it to a password of your own "
                                   f"(e.g. export {ADMIN_PASSWORD_ENV}=\"$(openssl rand -base64 18)\") and start again")
        if not os.environ.get(ADMIN_PASSWORD_ENV) and not _has_users(backend_store_uri):
            raise RecommenderError(f"the first start with --auth creates the admin account {admin_username!r}: set its "
                                   f"password in {ADMIN_PASSWORD_ENV} (read once; later starts ignore it)")
    if not is_loopback(host):
        notes.append(f"the server listens on {host}, beyond this machine, over plain HTTP: passwords and data cross "
                     "the network unencrypted. Put it behind a TLS-terminating proxy (nginx, Caddy) and give "
                     "analysts the https:// address" + ("" if auth else "; and add --auth so it asks who is calling"))
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    return ServerPlan(argv, env, f"http://{shown}:{port}", notes)


def secret_key(folder: Path) -> str:
    """The server's CSRF signing key: from the environment, else kept in ``folder`` so restarts agree."""
    if os.environ.get(SECRET_KEY_ENV):
        return os.environ[SECRET_KEY_ENV]
    path = folder / "secret_key"
    if not path.exists():
        write_private(path, secrets.token_hex(32))
    return path.read_text().strip()


def write_private(path: Path, text: str) -> None:
    """Write ``text`` readable by the owner only (it holds secrets)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)


def _has_users(uri: str) -> bool:
    import sqlalchemy

    engine = _engine(uri)
    try:
        with engine.connect() as conn:
            return bool(conn.execute(sqlalchemy.text("select exists (select 1 from users)")).scalar())
    except sqlalchemy.exc.SQLAlchemyError:
        return False
    finally:
        engine.dispose()


def _engine(uri: str, **kwargs):
    """A one-connection SQLAlchemy engine on ``uri`` through psycopg 3 (the driver this project installs)."""
    import sqlalchemy

    url = sqlalchemy.engine.make_url(uri).set(drivername="postgresql+psycopg")
    return sqlalchemy.create_engine(url, poolclass=sqlalchemy.NullPool, **kwargs)
