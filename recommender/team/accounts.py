"""Analysts' accounts on a team tracking server: thin wrappers over MLflow's basic-auth REST API.

The caller authenticates as an admin (or, for grants, as the resource's manager) through
``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``. Permissions are MLflow's own:
``READ`` (see), ``EDIT`` (log runs in an experiment; add versions to a model and move its
champion), ``MANAGE`` (EDIT plus granting and deleting), ``DENY`` (nothing: not even its runs,
artifacts or versions can be read; MLflow 3's name for what was ``NO_PERMISSIONS``, refused by the server).
"""

from __future__ import annotations

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import PERMISSION_DENIED, UNAUTHENTICATED
from mlflow.utils.credentials import get_default_host_creds
from mlflow.utils.rest_utils import http_request

from models.store import check_server, is_server
from recommender.errors import RecommenderError
from recommender.team import PERMISSIONS

# MLflow's auth REST endpoints (mlflow.server.auth.routes; its client module imports the whole server app)
CREATE_USER, UPDATE_ADMIN = "/api/2.0/mlflow/users/create", "/api/2.0/mlflow/users/update-admin"
LIST_USERS, GRANT = "/api/2.0/mlflow/users/list", "/api/3.0/mlflow/users/permissions/grant"
UPDATE_GRANT = "/api/3.0/mlflow/roles/permissions/update"  # one row of a user's own role: changed in one transaction
RESOURCE_TYPES = {"experiment": "experiment", "model": "registered_model"}


def _server(uri: str) -> str:
    if not is_server(uri):
        raise RecommenderError(f"accounts live on a team tracking server; {uri} is a local store. Give "
                               "--tracking-uri http://HOST:PORT of a server started with `recommender server --auth`")
    check_server(uri)
    return uri


def _call(uri: str, endpoint: str, method: str = "GET", **kwargs) -> dict:
    """One auth API call; 401/403 raise MlflowException (the CLI's refusal message), other errors their reason."""
    response = http_request(get_default_host_creds(uri), endpoint, method, **kwargs)
    if response.status_code == 404:
        raise RecommenderError(f"the tracking server {uri} has no accounts: start it with `recommender server --auth`")
    if response.status_code in (401, 403):
        raise MlflowException(f"{endpoint}: {response.status_code}",
                              error_code=UNAUTHENTICATED if response.status_code == 401 else PERMISSION_DENIED)
    if response.status_code != 200:
        try:
            reason = response.json().get("message", response.text)
        except ValueError:
            reason = response.text
        raise RecommenderError(reason.strip()[:300])
    return response.json() if response.text else {}


def add_user(uri: str, username: str, password: str, *, admin: bool = False) -> None:
    """Create an account (MLflow refuses duplicates and weak passwords with its own message)."""
    _server(uri)
    try:
        _call(uri, CREATE_USER, "POST", json={"username": username, "password": password})
        if admin:
            _call(uri, UPDATE_ADMIN, "PATCH", json={"username": username, "is_admin": True})
    except RecommenderError as exc:
        raise RecommenderError(f"cannot add user {username!r}: {exc}") from None


def grant(uri: str, username: str, permission: str, *, experiment: str | None = None, model: str | None = None) -> str:
    """Give ``username`` ``permission`` on one experiment (by name) or registered model; returns what was done."""
    if (experiment is None) == (model is None):
        raise RecommenderError("grant on exactly one resource: --experiment NAME or --model NAME")
    permission = permission.upper()
    if permission not in PERMISSIONS:
        raise RecommenderError(f"--permission must be one of {', '.join(PERMISSIONS)}; got {permission!r}")
    _server(uri)
    client = MlflowClient(uri)
    if experiment is not None:
        found = client.get_experiment_by_name(experiment)
        if found is None:
            raise RecommenderError(f"no experiment {experiment!r} on {uri}; the MLflow UI lists them")
        kind, resource_id, label = "experiment", found.experiment_id, f"experiment {experiment!r}"
    else:
        try:
            client.get_registered_model(model)
        except MlflowException as exc:
            if exc.error_code in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
                raise
            raise RecommenderError(f"no registered model {model!r} on {uri}; `recommender models` lists them") from None
        kind, resource_id, label = "model", model, f"model {model!r}"
    resource_type = RESOURCE_TYPES[kind]
    try:
        _call(uri, GRANT, "POST", json={"username": username, "resource_type": resource_type,
                                        "resource_id": resource_id, "permission": permission})
    except RecommenderError as exc:
        if "already exists" not in str(exc):
            raise RecommenderError(f"cannot grant {permission} on {label} to {username!r}: {exc}") from None
        former = _change_grant(uri, username, resource_type, str(resource_id), permission, label)
        return f"{username} now has {permission} on {label} (was {former})"
    return f"{username} now has {permission} on {label}"


def _change_grant(uri: str, username: str, resource_type: str, resource_id: str, permission: str, label: str) -> str:
    """Change the user's existing grant on one resource in place; returns the former permission.

    MLflow 3 keeps a user's grants as rows of the user's own role (``__user_<id>__``); the row is
    updated in one transaction, so the user never falls back to the default permission in between (as
    revoke-then-grant would). Changing a role's row is an admin's call in MLflow; a resource's manager
    who is not an admin is told so."""
    try:
        users = _call(uri, LIST_USERS)["users"]
    except MlflowException as exc:
        raise RecommenderError(f"{username!r} already has a permission on {label}; changing it takes an admin "
                               f"account (MLflow's role API): {exc.message}") from None
    user = next((u for u in users if u["username"] == username), None)
    rows = [row for role in (user or {}).get("roles", []) if str(role.get("name", "")).startswith("__user_")
            for row in role.get("permissions", [])
            if row.get("resource_type") == resource_type and str(row.get("resource_pattern")) == resource_id]
    if not rows:
        raise RecommenderError(f"the server says {username!r} already has a permission on {label}, but lists none "
                               "to change; `recommender users list` shows the grants")
    try:
        _call(uri, UPDATE_GRANT, "PATCH", json={"role_permission_id": rows[0]["id"], "permission": permission})
    except MlflowException as exc:
        raise RecommenderError(f"{username!r} already has {rows[0]['permission']} on {label}; changing it takes an "
                               f"admin account (MLflow's role API): {exc.message}") from None
    except RecommenderError as exc:
        raise RecommenderError(f"cannot change {username!r}'s permission on {label} to {permission}: {exc}") from None
    return str(rows[0]["permission"])


def list_users(uri: str) -> list[dict]:
    """Every account with its admin flag and its explicit grants (experiments shown by name).

    Whoever creates an experiment or a model holds MANAGE on it; anything not granted falls back to
    the server's default permission (READ with ``recommender server --auth``).
    """
    _server(uri)
    experiments = {e.experiment_id: e.name for e in MlflowClient(uri).search_experiments(max_results=50_000)}
    rows = []
    for user in _call(uri, LIST_USERS)["users"]:
        listed = []
        for role in user.get("roles", []):
            for row in role.get("permissions", []):
                kind, resource = row.get("resource_type"), row.get("resource_pattern")
                if kind not in RESOURCE_TYPES.values() or resource in (None, "*"):
                    continue
                listed.append({"resource": "experiment" if kind == "experiment" else "model",
                               "name": experiments.get(str(resource), resource) if kind == "experiment" else resource,
                               "permission": row.get("permission")})
        rows.append({"username": user["username"], "admin": bool(user.get("is_admin")), "grants": listed})
    return sorted(rows, key=lambda r: r["username"])

