"""Team mode against real servers: PostgreSQL started here on 127.0.0.1, ``recommender server --auth`` on it.

One server for the module (train → recommend → score → brief, accounts, 401/403, concurrent
champions, UI over HTTP), then a stop and a restart that must lose nothing.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import requests
from mlflow import MlflowClient

from recommender.bank.synthetic import WorldSpec
from recommender.config import Config
from recommender.demo import build_demo_bank
from recommender.errors import RecommenderError
from recommender.team.server import plan_server
from tests import postgres
from tests.postgres import free_port

ADMIN, ADMIN_PASSWORD = "admin", "admin-pw-5c2e9"
BOB, BOB_PASSWORD = "bob", "bob-pw-93af1"
DANA, DANA_PASSWORD = "dana", "dana-pw-41c7e"
PASSWORDS = {ADMIN: ADMIN_PASSWORD, BOB: BOB_PASSWORD, DANA: DANA_PASSWORD}
SECRETS = (ADMIN_PASSWORD, BOB_PASSWORD, DANA_PASSWORD, postgres.Postgres.password)
FAST = ("--horizon", "2", "--seeds", "1", "--param", "n_estimators=40")
STARTUP = 600  # seconds; the first start creates the schema, and the machine may be loaded


def _env(user: str | None = ADMIN, password: str | None = None, **extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "RECOMMENDER_NEW"))}
    if user:
        env["MLFLOW_TRACKING_USERNAME"] = user
        env["MLFLOW_TRACKING_PASSWORD"] = password or PASSWORDS[user]
    return {"COLUMNS": "160", **env, **extra}


class Team:
    """The PostgreSQL server, the tracking server process, a home with the tiny world's bank, and the CLI."""

    def __init__(self, root: Path, pg: postgres.Postgres, database: str = "mlflow"):
        self.root, self.pg, self.database = root, pg, database
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.home = root / "analyst"
        self.artifacts = root / "artifacts"
        self.server_home = root / "server-home"
        self.outputs: list[str] = []  # everything any command printed, checked for secrets
        self.process: subprocess.Popen | None = None

    def cli(self, *args, user: str | None = ADMIN, check: bool = True, stdin: str | None = None, **extra):
        proc = subprocess.run([sys.executable, "-m", "recommender", "--home", str(self.home), "--tracking-uri", self.url,
                               *map(str, args)], capture_output=True, text=True, timeout=1800, input=stdin,
                              env=_env(user, **extra))
        self.outputs += [proc.stdout, proc.stderr]
        if check:
            assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]
        return proc

    def start(self, admin_password: str | None = ADMIN_PASSWORD, *options: str) -> None:
        env = _env(None, **({"MLFLOW_AUTH_ADMIN_PASSWORD": admin_password} if admin_password else {}))
        log = open(self.root / "server.log", "a")  # kept open for the server's life
        self.process = subprocess.Popen(
            [sys.executable, "-m", "recommender", "--home", str(self.server_home), "server", "--backend-store-uri",
             self.pg.uri(self.database), "--artifacts-destination", str(self.artifacts), "--port", str(self.port), "--auth",
             *options],
            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.monotonic() + STARTUP
        while time.monotonic() < deadline:
            assert self.process.poll() is None, (self.root / "server.log").read_text()[-3000:]
            try:
                if requests.get(self.url + "/health", timeout=10).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(1)
        raise AssertionError(f"the tracking server did not answer within {STARTUP} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=300)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def client(self, user: str = ADMIN) -> MlflowClient:
        os.environ["MLFLOW_TRACKING_USERNAME"] = user
        os.environ["MLFLOW_TRACKING_PASSWORD"] = PASSWORDS[user]
        return MlflowClient(self.url)

    def api(self, path: str, user: str | None = ADMIN, method: str = "GET", **kwargs) -> requests.Response:
        auth = (user, PASSWORDS[user]) if user else None
        return requests.request(method, self.url + path, auth=auth, timeout=120, **kwargs)


@pytest.fixture(scope="module")
def pg():
    if postgres.find_bin("initdb") is None:
        pytest.skip("PostgreSQL is not installed: `make postgres` (part of `make test`) installs Debian's postgresql")
    server = postgres.start_postgres()
    yield server
    server.stop()
    shutil.rmtree(server.folder, ignore_errors=True)


def test_one_request_cannot_hold_the_servers_database_beyond_its_time_limit(pg, tmp_path, monkeypatch):
    import configparser

    import sqlalchemy

    monkeypatch.setenv("MLFLOW_AUTH_ADMIN_PASSWORD", ADMIN_PASSWORD)
    plan = plan_server(tmp_path, pg.uri(), str(tmp_path / "artifacts"), port=free_port(), auth=True, request_timeout=1)
    url = sqlalchemy.engine.make_url(plan.env["MLFLOW_BACKEND_STORE_URI"]).set(drivername="postgresql+psycopg")
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.NullPool)
    try:
        with engine.connect() as conn:
            assert conn.execute(sqlalchemy.text("show statement_timeout")).scalar() == "1s"
            assert conn.execute(sqlalchemy.text("select pg_sleep(0.1), 1")).one()[1] == 1  # within the limit: answered
            with pytest.raises(sqlalchemy.exc.OperationalError, match="statement timeout"):
                conn.execute(sqlalchemy.text("select pg_sleep(5)"))
    finally:
        engine.dispose()
    parser = configparser.ConfigParser()  # the accounts' database gets the same limit, %-escapes read back intact
    parser.read(tmp_path / "server" / "basic_auth.ini")
    assert parser["mlflow"]["database_uri"] == plan.env["MLFLOW_BACKEND_STORE_URI"]


def test_server_checks_the_database_first_and_keeps_secrets_off_the_command_line(pg, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_AUTH_ADMIN_PASSWORD", ADMIN_PASSWORD)
    plan = plan_server(tmp_path, pg.uri(), str(tmp_path / "artifacts"), host="0.0.0.0", port=free_port(), auth=True)
    assert pg.password not in " ".join(plan.argv) and ADMIN_PASSWORD not in " ".join(plan.argv)
    assert plan.env["MLFLOW_BACKEND_STORE_URI"].startswith(pg.uri() + "?") and "--serve-artifacts" in plan.argv
    assert "--limit-concurrency 64" in plan.argv  # a burst beyond 64 requests per worker gets 503, which clients retry
    assert any("TLS" in w for w in plan.warnings)  # beyond loopback: plain HTTP is called out
    assert not plan_server(tmp_path, pg.uri(), str(tmp_path / "a"), port=free_port()).warnings  # loopback: quiet
    for private in ("basic_auth.ini", "secret_key"):
        assert (tmp_path / "server" / private).stat().st_mode & 0o077 == 0
    wrong = pg.uri().replace(pg.password, "not-the-password")
    with pytest.raises(RecommenderError, match="password authentication failed") as info:
        plan_server(tmp_path, wrong, str(tmp_path / "artifacts"))
    assert "not-the-password" not in str(info.value) and "recommender:***@" in str(info.value)
    with pytest.raises(RecommenderError, match="does not exist.*createdb"):
        plan_server(tmp_path, pg.uri("nosuchdb"), str(tmp_path / "artifacts"))
    with pytest.raises(RecommenderError, match="PostgreSQL"):
        plan_server(tmp_path, f"sqlite:///{tmp_path}/x.db", str(tmp_path / "artifacts"))
    monkeypatch.setenv("MLFLOW_AUTH_ADMIN_PASSWORD", "password1234")  # MLflow's old default: one sentence, not a traceback
    with pytest.raises(RecommenderError, match="default admin password .* set it to a password of your own") as info:
        plan_server(tmp_path, pg.uri(), str(tmp_path / "artifacts"), auth=True)
    assert "password1234" not in str(info.value)
    monkeypatch.setenv("MLFLOW_AUTH_ADMIN_PASSWORD", ADMIN_PASSWORD)
    proc = subprocess.run([sys.executable, "-m", "recommender", "server", "--backend-store-uri", wrong,
                           "--artifacts-destination", str(tmp_path / "artifacts")], capture_output=True, text=True,
                          timeout=600, env=_env(None))
    assert proc.returncode == 2 and "cannot reach the PostgreSQL database" in proc.stderr and "Traceback" not in proc.stderr
    assert "not-the-password" not in proc.stderr + proc.stdout


@pytest.fixture(scope="module")
def team(pg, tmp_path_factory):
    team = Team(tmp_path_factory.mktemp("team"), pg)
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")}
    try:
        list(build_demo_bank(Config(home=team.home), spec=WorldSpec.tiny(seed=7)))
        team.start()
        team.cli("train", "--task", "import-substitution", *FAST)
        team.cli("train", "--task", "joint-projects", *FAST)
        yield team
    finally:
        team.stop()
        for key, value in saved.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)


def _bob(team: Team) -> None:
    """The analyst bob: may log runs in joint-projects, READ (the default) on everything else."""
    if BOB not in {u["username"] for u in _users(team)}:
        team.cli("users", "add", BOB, RECOMMENDER_NEW_PASSWORD=BOB_PASSWORD)
        team.cli("users", "grant", BOB, "--experiment", "joint-projects", "--permission", "EDIT")


def _users(team: Team) -> list[dict]:
    import json

    return json.loads(team.cli("users", "list", "--json").stdout)


def test_train_recommend_score_and_brief_against_the_server(team, tmp_path):
    client = team.client()
    for name in ("import-substitution-SCO", "joint-projects-SCO"):
        assert client.get_model_version_by_alias(name, "champion") is not None
    out = tmp_path / "recs.csv"
    team.cli("recommend", "--task", "import-substitution", "--top", "5", "--output", out)
    recs = pd.read_csv(out, dtype=str)
    assert len(recs) > 0
    projects = tmp_path / "projects.csv"
    recs[["importer", "supplier", "product"]].head(4).to_csv(projects, index=False)
    scored_path = tmp_path / "scored.csv"
    team.cli("score", projects, "--task", "import-substitution", "--output", scored_path)
    scored = pd.read_csv(scored_path, dtype=str)
    assert scored["model_version"].str.startswith("import-substitution-SCO/").all()
    brief = team.cli("brief", "--country", "KAZ", "--output", tmp_path / "brief.html")
    assert (tmp_path / "brief.html").stat().st_size > 10_000, brief.stdout
    # artifacts went through the server into its destination: clients never wrote there themselves
    assert any(p.name == "model.lgb" for p in team.artifacts.rglob("*"))


def test_requests_without_valid_credentials_are_refused(team):
    assert team.api("/api/2.0/mlflow/experiments/search?max_results=5", user=None).status_code == 401
    assert team.api("/api/2.0/mlflow/experiments/search?max_results=5").status_code == 200
    anonymous = team.cli("models", user=None, check=False)
    assert anonymous.returncode == 2 and "asks who you are: set MLFLOW_TRACKING_USERNAME" in anonymous.stderr
    wrong = team.cli("models", user=ADMIN, password="not-the-password", check=False)
    assert wrong.returncode == 2 and "refused the user name 'admin' or its password" in wrong.stderr
    assert "Traceback" not in anonymous.stderr + wrong.stderr


def test_credentials_in_the_uri_are_refused(team):
    url = team.url.replace("http://", f"http://{ADMIN}:{ADMIN_PASSWORD}@")
    proc = subprocess.run([sys.executable, "-m", "recommender", "--home", str(team.home), "--tracking-uri", url, "models"],
                          capture_output=True, text=True, timeout=600, env=_env(None))
    assert proc.returncode == 2 and "MLFLOW_TRACKING_USERNAME" in proc.stderr
    assert ADMIN_PASSWORD not in proc.stderr + proc.stdout


def test_users_add_grant_and_list(team):
    _bob(team)
    users = {u["username"]: u for u in _users(team)}
    assert users[ADMIN]["admin"] and not users[BOB]["admin"]
    assert {"resource": "experiment", "name": "joint-projects", "permission": "EDIT"} in users[BOB]["grants"]
    again = team.cli("users", "add", BOB, check=False, RECOMMENDER_NEW_PASSWORD=BOB_PASSWORD)
    assert again.returncode == 2 and "cannot add user 'bob'" in again.stderr
    # only an admin creates accounts
    denied = team.cli("users", "add", "carol", user=BOB, check=False, RECOMMENDER_NEW_PASSWORD="carol-pw-1234")
    assert denied.returncode == 2 and "refused: user 'bob' lacks the permission" in denied.stderr
    assert "carol" not in {u["username"] for u in team.api("/api/2.0/mlflow/users/list").json()["users"]}


def test_a_second_grant_changes_the_permission_in_place(team):
    """Granting again changes the existing grant (one row updated: no moment at the default permission)."""
    _bob(team)  # bob has EDIT on joint-projects

    def granted() -> list[str]:
        return [g["permission"] for g in {u["username"]: u for u in _users(team)}[BOB]["grants"]
                if g["resource"] == "experiment" and g["name"] == "joint-projects"]

    changed = team.cli("users", "grant", BOB, "--experiment", "joint-projects", "--permission", "READ")
    assert "bob now has READ on experiment 'joint-projects' (was EDIT)" in changed.stdout
    assert granted() == ["READ"]  # one grant, the new one
    team.cli("users", "grant", BOB, "--experiment", "joint-projects", "--permission", "EDIT")
    assert granted() == ["EDIT"]
    # a user name that has no account: one sentence
    missing = team.cli("users", "grant", "nobody", "--experiment", "joint-projects", "--permission", "READ", check=False)
    assert missing.returncode == 2 and "cannot grant READ on experiment 'joint-projects' to 'nobody'" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_a_reader_cannot_move_the_champion(team):
    _bob(team)
    client = team.client()
    name = "joint-projects-SCO"
    experiment = client.get_experiment_by_name("joint-projects").experiment_id
    before = (client.get_model_version_by_alias(name, "champion").version,
              sorted(mv.version for mv in client.search_model_versions(f"name='{name}'")),
              {r.info.run_id for r in client.search_runs([experiment], "attributes.status = 'FINISHED'")})
    # the REST call itself: 403
    denied = team.api("/api/2.0/mlflow/registered-models/alias", user=BOB, method="POST",
                      json={"name": name, "alias": "champion", "version": before[1][0]})
    assert denied.status_code == 403
    # through the CLI: one clear sentence, nothing left behind
    proc = team.cli("train", "--task", "joint-projects", *FAST, "--promote", user=BOB, check=False)
    assert proc.returncode == 2, proc.stdout[-2000:]
    message = proc.stderr.strip()
    assert "user 'bob' may not add versions to the model 'joint-projects-SCO' or move its champion" in message
    assert "Traceback" not in message and f"recommender users grant bob --model {name} --permission EDIT" in message
    after = (client.get_model_version_by_alias(name, "champion").version,
             sorted(mv.version for mv in client.search_model_versions(f"name='{name}'")),
             {r.info.run_id for r in client.search_runs([experiment], "attributes.status = 'FINISHED'")})
    assert after == before  # same champion, same versions, no new finished run
    # bob may EDIT the experiment but not delete runs (MANAGE): his run stays, closed as FAILED, and says so
    assert "the run was closed as FAILED" in message


# The race: each process registers its version, then waits for the other at the champion step.
RACER = """
import sys, time
from pathlib import Path
import models.champion as champion
barrier, me = Path(sys.argv[1]), sys.argv[2]
settle = champion.settle_champion
def at_the_same_moment(client, name):
    (barrier / me).touch()
    deadline = time.monotonic() + 900
    while len(list(barrier.iterdir())) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    return settle(client, name)
champion.settle_champion = at_the_same_moment
sys.argv = ["recommender", *sys.argv[3:]]
from recommender.cli import main
main()
"""


def test_concurrent_trainings_leave_exactly_one_champion_the_better_one(team, tmp_path):
    _bob(team)
    name = "joint-projects-SCO"
    team.cli("users", "grant", BOB, "--model", name, "--permission", "EDIT")
    client = team.client()
    champion_before = client.get_model_version_by_alias(name, "champion")
    versions_before = {mv.version for mv in client.search_model_versions(f"name='{name}'")}
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    racers = []
    for user, seed in ((ADMIN, "11"), (BOB, "12")):
        args = ["--home", str(team.home), "--tracking-uri", team.url, "train", "--task", "joint-projects", *FAST,
                "--seed", seed]
        racers.append(subprocess.Popen([sys.executable, "-c", RACER, str(barrier), user, *args], stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True, env=_env(user)))
    outputs = [r.communicate(timeout=1800) for r in racers]
    team.outputs += [text for pair in outputs for text in pair]
    assert [r.returncode for r in racers] == [0, 0], outputs
    new = sorted(({mv.version for mv in client.search_model_versions(f"name='{name}'")} - versions_before), key=int)
    assert len(new) == 2  # both versions registered
    score = {v: client.get_run(client.get_model_version(name, v).run_id).data.metrics["test_ndcg_at_10"]
             for v in [champion_before.version, *new]}
    expected = champion_before.version  # the documented rule, applied in version order
    for v in new:
        if score[v] > score[expected]:
            expected = v
    aliases = client.get_registered_model(name).aliases
    assert list(aliases) == ["champion"] and str(aliases["champion"]) == str(expected), (score, aliases, outputs)
    said = [out for out, _ in outputs if "is now champion" in out]
    assert len(said) == (0 if expected == champion_before.version else 1)


def test_the_servers_ui_lists_both_experiments(team):
    page = team.api("/")
    assert page.status_code == 200 and "<title>MLflow</title>" in page.text
    listed = team.api("/ajax-api/2.0/mlflow/experiments/search", method="POST", json={"max_results": 100})
    assert listed.status_code == 200
    assert {"import-substitution", "joint-projects"} <= {e["name"] for e in listed.json()["experiments"]}
    assert team.api("/", user=None).status_code == 401
    ui = team.cli("ui")
    assert f"open {team.url}" in ui.stdout


def test_no_credential_is_ever_printed_logged_or_stored(team):
    text = "\n".join(team.outputs) + (team.root / "server.log").read_text()
    client = team.client()
    for exp in client.search_experiments():
        for run in client.search_runs([exp.experiment_id]):
            text += repr(run.data.params) + repr(run.data.tags)
    for path in team.artifacts.rglob("*"):
        if path.is_file():
            text += path.read_bytes().decode("utf-8", "replace")
    for secret in SECRETS:
        assert secret not in text


def test_stopping_and_restarting_the_server_loses_nothing(team, tmp_path):
    def snapshot():
        client = team.client()
        exps = sorted((e.experiment_id, e.name) for e in client.search_experiments())
        runs = sorted((r.info.run_id, r.info.status, tuple(sorted(r.data.metrics.items())))
                      for e in exps for r in client.search_runs([e[0]]))
        models = sorted((m.name, tuple(sorted(m.aliases.items())),
                         tuple(sorted(mv.version for mv in client.search_model_versions(f"name='{m.name}'"))))
                        for m in client.search_registered_models())
        users = team.api("/api/2.0/mlflow/users/list").json()["users"]
        return exps, runs, models, sorted((u["username"], u["is_admin"], repr(u["roles"])) for u in users)

    before = snapshot()
    team.stop()
    team.start(admin_password=None)  # the admin exists now: no password needed to start
    assert snapshot() == before
    # artifacts are still served: the champion's model file and a run's table come back through the server
    client = team.client()
    champion = client.get_model_version_by_alias("joint-projects-SCO", "champion")
    source = client.get_model_version_download_uri("joint-projects-SCO", champion.version)
    model_file = mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=str(tmp_path / "m"),
                                                     tracking_uri=team.url)
    assert (Path(model_file) / "model.lgb").stat().st_size > 0
    table = client.download_artifacts(champion.run_id, "per_year_metrics.csv", str(tmp_path))
    assert len(pd.read_csv(table)) > 0


def test_with_the_database_down_commands_say_so_and_the_server_recovers(team, pg, tmp_path):
    """Issue 31: the server up, its PostgreSQL down. `score` once waited ~250 s and blamed a missing champion;
    `train` ended in MLflow tracebacks. Now: one sentence naming the database, in MLflow's bounded retries."""
    recs = tmp_path / "recs.csv"
    team.cli("recommend", "--task", "import-substitution", "--top", "3", "--output", recs)
    projects = tmp_path / "projects.csv"
    pd.read_csv(recs, dtype=str)[["importer", "supplier", "product"]].head(3).to_csv(projects, index=False)
    champion_before = team.client().get_model_version_by_alias("joint-projects-SCO", "champion").version
    out = tmp_path / "scored.csv"
    pg.stop()
    try:
        started = time.monotonic()
        score = team.cli("score", projects, "--task", "import-substitution", "--output", out, check=False)
        waited = time.monotonic() - started
        train = team.cli("train", "--task", "joint-projects", *FAST, check=False)
    finally:
        pg.resume()
    for proc in (score, train):
        assert proc.returncode == 2, proc.stderr[-3000:]
        assert "database is probably down" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-3000:]
        assert "no champion" not in proc.stderr + proc.stdout
    assert "features" not in train.stdout  # it failed before doing the work, not after
    assert not out.exists()  # no partial output
    print(f"\nscore with the database down: {waited:.1f} s\n{score.stderr}\n{train.stderr}")
    assert waited < 240, waited  # MLflow's default retries waited ~250 s; the CLI's budget is ~31 s
    # once the database is back the same commands work and nothing changed meanwhile
    team.cli("score", projects, "--task", "import-substitution", "--output", out)
    assert len(pd.read_csv(out)) == 3
    assert team.client().get_model_version_by_alias("joint-projects-SCO", "champion").version == champion_before


def test_the_server_dying_during_train_and_score_is_one_sentence_and_nothing_half_written(team, tmp_path):
    """Issue 31: the tracking server killed (SIGKILL) while a `train` works, and before a `score`."""
    client = team.client()
    versions_before = sorted(mv.version for mv in client.search_model_versions("name='joint-projects-SCO'"))
    champion_before = client.get_model_version_by_alias("joint-projects-SCO", "champion").version
    log = tmp_path / "train.log"
    with open(log, "w") as out:
        train = subprocess.Popen([sys.executable, "-m", "recommender", "--home", str(team.home), "--tracking-uri", team.url,
                                  "train", "--task", "joint-projects", *FAST], stdout=out, stderr=subprocess.STDOUT,
                                 env=_env(ADMIN))
        while "features:" not in log.read_text():  # the store answered; the work has begun
            assert train.poll() is None, log.read_text()[-3000:]
            time.sleep(0.2)
        os.killpg(team.process.pid, signal.SIGKILL)
        team.process.wait()
        code = train.wait(timeout=1800)
    text = log.read_text()
    assert code == 2, text[-3000:]
    assert "is not answering" in text and "Traceback" not in text, text[-3000:]
    projects = tmp_path / "projects.csv"
    pd.DataFrame({"importer": ["KAZ"], "supplier": ["CHN"], "product": ["0101"]}).to_csv(projects, index=False)
    out = tmp_path / "scored.csv"
    score = team.cli("score", projects, "--task", "import-substitution", "--output", out, check=False)
    assert score.returncode == 2 and "cannot reach the MLflow tracking server" in score.stderr, score.stderr[-3000:]
    assert "Traceback" not in score.stderr and not out.exists()
    team.start(admin_password=None)
    client = team.client()
    assert client.get_model_version_by_alias("joint-projects-SCO", "champion").version == champion_before
    after = sorted(mv.version for mv in client.search_model_versions("name='joint-projects-SCO'"))
    assert after == versions_before  # the killed train registered nothing
    team.cli("train", "--task", "joint-projects", *FAST)  # and a train afterwards succeeds


def test_postgresql_restarting_while_train_logs_its_run_is_survived(team, pg, tmp_path):
    """Issue 31: PostgreSQL stopped just as `train` starts recording (after the refit), started again 10 s later:
    MLflow's retries (1, 2, 4, 8, 16 s apart) carry the run through; it finishes complete and registered."""
    client = team.client()
    versions_before = {mv.version for mv in client.search_model_versions("name='joint-projects-SCO'")}
    log = tmp_path / "train.log"
    with open(log, "w") as out:
        train = subprocess.Popen([sys.executable, "-m", "recommender", "--home", str(team.home), "--tracking-uri", team.url,
                                  "train", "--task", "joint-projects", *FAST], stdout=out, stderr=subprocess.STDOUT,
                                 env=_env(ADMIN))
        while "refit on every labelled year" not in log.read_text():
            assert train.poll() is None, log.read_text()[-3000:]
            time.sleep(0.1)
        pg.stop()
        try:
            time.sleep(10)
        finally:
            pg.resume()
        code = train.wait(timeout=1800)
    assert code == 0, log.read_text()[-3000:]
    client = team.client()
    new = {mv.version for mv in client.search_model_versions("name='joint-projects-SCO'")} - versions_before
    assert len(new) == 1, new
    mv = client.get_model_version("joint-projects-SCO", new.pop())
    run = client.get_run(mv.run_id)
    assert run.info.status == "FINISHED" and "test_ndcg_at_10" in run.data.metrics  # the run is whole
    assert {a.path for a in client.list_artifacts(mv.run_id)} >= {"per_year_metrics.csv"}


def test_a_reader_cannot_train_and_a_user_without_permission_cannot_read(team, tmp_path):
    """Issue 31 §3. bob holds READ (the server's default) on import-substitution: his train is refused in one
    sentence and writes nothing. dana holds DENY on it and its model: she cannot read its runs, their
    artifacts or the model, through the REST API or the CLI, while the other experiment stays readable to her."""
    _bob(team)
    client = team.client()
    experiment = client.get_experiment_by_name("import-substitution").experiment_id
    name = "import-substitution-SCO"

    def state():
        return ({(r.info.run_id, r.info.status) for r in client.search_runs([experiment])},
                sorted(mv.version for mv in client.search_model_versions(f"name='{name}'")),
                client.get_model_version_by_alias(name, "champion").version)

    before = state()
    proc = team.cli("train", "--task", "import-substitution", *FAST, user=BOB, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert len(proc.stderr.strip().splitlines()) == 1 and ("user 'bob' may not log runs in the experiment "
                                                          "'import-substitution'") in proc.stderr
    assert "recommender users grant bob --experiment import-substitution --permission EDIT" in proc.stderr
    assert state() == before  # no run, no version, the same champion

    if DANA not in {u["username"] for u in _users(team)}:
        team.cli("users", "add", DANA, RECOMMENDER_NEW_PASSWORD=DANA_PASSWORD)
    team.cli("users", "grant", DANA, "--experiment", "import-substitution", "--permission", "DENY")
    team.cli("users", "grant", DANA, "--model", name, "--permission", "DENY")
    run_id = client.get_model_version_by_alias(name, "champion").run_id
    for path, method, body in [
            (f"/api/2.0/mlflow/runs/get?run_id={run_id}", "GET", None),
            ("/api/2.0/mlflow/runs/search", "POST", {"experiment_ids": [experiment]}),
            (f"/api/2.0/mlflow/artifacts/list?run_id={run_id}", "GET", None),
            (f"/get-artifact?path=per_year_metrics.csv&run_uuid={run_id}", "GET", None),
            (f"/api/2.0/mlflow/registered-models/get?name={name}", "GET", None),
            (f"/api/2.0/mlflow/registered-models/alias?name={name}&alias=champion", "GET", None)]:
        response = team.api(path, user=DANA, method=method, json=body)
        if path.endswith("runs/search"):  # a search answers, with the runs she may not read filtered out
            assert response.status_code == 200 and not response.json().get("runs"), response.text[:300]
        else:
            assert response.status_code == 403, (path, response.status_code, response.text[:300])
        assert "per_year" not in response.text and "ndcg" not in response.text  # nothing of the run leaks
    out = tmp_path / "dana.csv"
    proc = team.cli("recommend", "--task", "import-substitution", "--top", "5", "--output", out, user=DANA, check=False)
    assert proc.returncode == 2 and not out.exists() and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "refused: user 'dana' lacks the permission" in errors[0], proc.stderr
    other = client.get_model_version_by_alias("joint-projects-SCO", "champion").run_id
    assert team.api(f"/api/2.0/mlflow/runs/get?run_id={other}", user=DANA).status_code == 200  # READ elsewhere


def test_a_reader_scores_with_the_champion_and_is_told_the_scoring_was_not_recorded(team, tmp_path):
    """Scoring needs READ on the model only. The scoring experiment belongs to whoever scored first; a READ
    user still gets the whole scored file, exit 0, and a warning that names the grant that would record it."""
    _bob(team)
    projects = tmp_path / "projects.csv"
    team.cli("recommend", "--task", "import-substitution", "--top", "3", "--output", tmp_path / "recs.csv")
    pd.read_csv(tmp_path / "recs.csv", dtype=str)[["importer", "supplier", "product"]].to_csv(projects, index=False)
    team.cli("score", projects, "--task", "import-substitution", "--output", tmp_path / "admin.csv")  # the experiment exists
    client = team.client()
    experiment = client.get_experiment_by_name("import-substitution-scoring").experiment_id
    runs_before = {r.info.run_id for r in client.search_runs([experiment])}
    out = tmp_path / "bob.csv"
    proc = team.cli("score", projects, "--task", "import-substitution", "--output", out, user=BOB)
    assert "Traceback" not in proc.stderr and len(pd.read_csv(out)) == len(pd.read_csv(projects))
    assert "the scoring was not recorded in MLflow: user 'bob' may read the model" in proc.stderr
    assert "recommender users grant bob --experiment import-substitution-scoring --permission EDIT" in proc.stderr
    assert "recorded in MLflow as run" not in proc.stdout
    assert {r.info.run_id for r in client.search_runs([experiment])} == runs_before  # nothing half-recorded


def test_the_scoring_service_acts_for_each_analyst_with_their_own_permissions(team, tmp_path):
    """The resident service holds no credentials of its own: admin's list is scored and recorded as admin's
    run; bob (READ on the model) gets his scored file and the not-recorded warning naming him; dana (DENY on
    the model) and a caller without credentials are refused in one sentence, with no file. No password
    reaches the service's log or the process list."""
    from tests.scoring_service import ScoringServiceProcess

    _bob(team)
    if DANA not in {u["username"] for u in _users(team)}:
        team.cli("users", "add", DANA, RECOMMENDER_NEW_PASSWORD=DANA_PASSWORD)
    team.cli("users", "grant", DANA, "--model", "import-substitution-SCO", "--permission", "DENY")  # again: unchanged
    projects = tmp_path / "projects.csv"
    team.cli("recommend", "--task", "import-substitution", "--top", "3", "--output", tmp_path / "recs.csv")
    pd.read_csv(tmp_path / "recs.csv", dtype=str)[["importer", "supplier", "product"]].to_csv(projects, index=False)
    team.cli("score", projects, "--task", "import-substitution", "--output", tmp_path / "admin-local.csv")
    service = ScoringServiceProcess(team.home, tmp_path / "service.log", "--preload", "import-substitution",
                                    tracking_uri=team.url, env=_env(ADMIN))
    try:
        admin = team.cli("score", projects, "--task", "import-substitution", "--output", tmp_path / "admin.csv",
                         "--service", service.url)
        assert (tmp_path / "admin.csv").read_bytes() == (tmp_path / "admin-local.csv").read_bytes()
        run_id = admin.stdout.split("recorded in MLflow as run ")[1].split()[0]
        assert team.client().get_run(run_id).info.user_id == ADMIN
        bob = team.cli("score", projects, "--task", "import-substitution", "--output", tmp_path / "bob.csv",
                       "--service", service.url, user=BOB)
        assert len(pd.read_csv(tmp_path / "bob.csv")) == len(pd.read_csv(projects))
        assert "the scoring was not recorded in MLflow: user 'bob' may read the model" in bob.stderr
        for user in (DANA, None):
            refused = team.cli("score", projects, "--task", "import-substitution", "--output", tmp_path / "no.csv",
                               "--service", service.url, user=user, check=False)
            errors = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
            assert refused.returncode == 2 and len(errors) == 1 and "Traceback" not in refused.stderr, refused.stderr
            assert ("lacks the permission" if user else "asks who you are") in errors[0]
            assert not (tmp_path / "no.csv").exists()
        listing = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    finally:
        service.stop()
    logged = (tmp_path / "service.log").read_text()
    assert not any(secret in logged or secret in listing for secret in SECRETS)


def test_an_upload_over_the_servers_body_limit_is_refused_and_nothing_of_it_stored(pg, tmp_path):
    """Issue 31: one request's body is bounded (``--max-body-mb``), declared or streamed, with a sentence naming the limit."""
    from models.store import refusal

    pg.createdb("limits")
    team = Team(tmp_path, pg, database="limits")
    try:
        team.start(ADMIN_PASSWORD, "--max-body-mb", "1")
        client = team.client()
        run_id = client.create_run(client.create_experiment("uploads")).info.run_id
        small, big = tmp_path / "small.bin", tmp_path / "big.bin"
        small.write_bytes(os.urandom(300_000))
        big.write_bytes(os.urandom(3 * 2**20))
        client.log_artifact(run_id, str(small))  # under the limit: stored
        with pytest.raises(Exception) as caught:
            client.log_artifact(run_id, str(big))
        message = refusal(caught.value)
        assert message is not None and "(1 MB, `recommender server --max-body-mb`)" in message, caught.value
        assert "3.0 MB" in message and "nothing of it was stored" in message

        artifact_root = client.get_run(run_id).info.artifact_uri.split("mlflow-artifacts:/", 1)[1]
        pieces = [os.urandom(2**16) for _ in range(40)]  # 2.5 MB sent without a Content-Length (chunked)
        under = team.api(f"/api/2.0/mlflow-artifacts/artifacts/{artifact_root}/chunked.bin", method="PUT",
                         data=iter(pieces[:8]))
        assert under.status_code == 200, under.text  # 512 KB streamed: spooled, then stored whole
        streamed = team.api(f"/api/2.0/mlflow-artifacts/artifacts/{artifact_root}/streamed.bin", method="PUT",
                            data=iter(pieces))
        assert streamed.status_code == 413 and streamed.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"
        assert sorted(f.path for f in client.list_artifacts(run_id)) == ["chunked.bin", "small.bin"]
        stored = {p.name: p for p in team.artifacts.rglob("*") if p.is_file()}
        assert sorted(stored) == ["chunked.bin", "small.bin"], stored  # no partial file of either refused upload
        assert stored["chunked.bin"].read_bytes() == b"".join(pieces[:8])
    finally:
        team.stop()


def test_a_chunked_upload_abandoned_mid_body_never_reaches_the_app():
    """A client that disconnects halfway through a chunked body: the app (MLflow, which would store
    what it got as the whole file) is never called, and nothing is answered on the dead connection."""
    import asyncio

    from recommender.team.app import BodyLimit

    called, sent = [], []
    messages = iter([{"type": "http.request", "body": b"x" * 1000, "more_body": True}, {"type": "http.disconnect"}])

    async def app(scope, receive, send):
        called.append(scope)

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "PUT", "path": "/api/2.0/mlflow-artifacts/artifacts/x.bin", "headers": []}
    asyncio.run(BodyLimit(app, 10_000)(scope, lambda: _next(messages), send))
    assert called == [] and sent == []
    whole = iter([{"type": "http.request", "body": b"x" * 1000, "more_body": True}, {"type": "http.request", "body": b"y"}])
    bodies = []

    async def reader(scope, receive, send):
        while True:
            message = await receive()
            bodies.append(message["body"])
            if not message["more_body"]:
                return

    asyncio.run(BodyLimit(reader, 10_000)(scope, lambda: _next(whole), send))
    assert b"".join(bodies) == b"x" * 1000 + b"y"  # a whole chunked body is handed on whole


async def _next(messages):
    return next(messages)
