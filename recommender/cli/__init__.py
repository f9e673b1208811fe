"""The ``recommender`` command: one root Typer app; each stage's commands in a small module."""

from __future__ import annotations

import errno
import os
import signal
import sys

import typer

from models.store import RETRIES
from recommender.cli import bank as bank_cmd
from recommender.cli import brief as brief_cmd
from recommender.cli import demo as demo_cmd
from recommender.cli import ingest as ingest_cmd
from recommender.cli import models as models_cmd
from recommender.cli import recommend as recommend_cmd
from recommender.cli import scenario as scenario_cmd
from recommender.cli import score as score_cmd
from recommender.cli import server as server_cmd
from recommender.cli import train as train_cmd
from recommender.cli import ui as ui_cmd
from recommender.cli import users as users_cmd
from recommender.cli._common import console_err, root_callback
from recommender.errors import USER_ERRORS

app = typer.Typer(
    name="recommender",
    help="Industrial-cooperation recommender: import substitution and joint projects for trade blocs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.callback()(root_callback)
app.add_typer(ingest_cmd.app, name="ingest")
app.add_typer(bank_cmd.app, name="bank")
app.command("demo")(demo_cmd.demo)
app.command("train")(train_cmd.train)
app.command("recommend")(recommend_cmd.recommend)
app.command("score")(score_cmd.score)
app.command("scenario")(scenario_cmd.scenario)
app.command("brief")(brief_cmd.brief)
app.command("models")(models_cmd.models)
app.command("ui")(ui_cmd.ui)
app.command("server")(server_cmd.server)
app.add_typer(users_cmd.app, name="users")


_DISK_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main() -> None:
    """Console-script entry point: usage and library errors become one message and exit code 2."""
    signal.signal(signal.SIGTERM, _interrupt)  # a terminated command cleans up like Ctrl-C: no half-logged run
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # a bloc's data bank sends no usage data anywhere
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")  # the CLI says which run it wrote
    for name, value in RETRIES.items():  # a team server that cannot answer is reported in ~30 s, not ~4 min
        os.environ.setdefault(name, value)
    try:
        app(standalone_mode=False)
    except USER_ERRORS as exc:
        console_err.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(2)
    except typer.TyperException as exc:  # usage errors: missing option, bad value, unknown command
        exc.show() if hasattr(exc, "show") else console_err.print(f"error: {exc}", highlight=False)
        sys.exit(exc.exit_code if exc.exit_code != 1 else 2)
    except typer.Abort:
        console_err.print("aborted")
        sys.exit(130)
    except KeyboardInterrupt:
        console_err.print("interrupted; the data bank and tracking store are unchanged")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except OSError as exc:
        if exc.errno not in _DISK_ERRORS:
            raise
        where = f" ({exc.filename})" if exc.filename else ""
        console_err.print(f"[bold red]error:[/] {exc.strerror or exc}{where}; nothing was half-written: the data bank and "
                          "outputs are written to temporary files renamed into place. Free space (or choose a writable "
                          "place) and run again", highlight=False)
        sys.exit(2)
    except Exception as exc:  # a tracking server's 401/403 or outage is the user's to see, not a crash
        from models.store import refusal, unreachable

        message = refusal(exc) or unreachable(exc)
        if message is None:
            raise
        console_err.print(f"[bold red]error:[/] {message}", highlight=False)
        sys.exit(2)
