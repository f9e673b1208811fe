"""The ``recommender`` command: one root Typer app; each stage's commands in a small module."""

from __future__ import annotations

import errno
import importlib
import os
import signal
import sys

import typer

from models.store import RETRIES
from recommender.cli._common import console_err, root_callback
from recommender.errors import USER_ERRORS

COMMANDS: dict[str, tuple[str, str]] = {  # name → (module of recommender.cli, its command function or Typer group)
    "ingest": ("ingest", "app"),
    "bank": ("bank", "app"),
    "demo": ("demo", "demo"),
    "train": ("train", "train"),
    "recommend": ("recommend", "recommend"),
    "score": ("score", "score"),
    "scenario": ("scenario", "scenario"),
    "brief": ("brief", "brief"),
    "models": ("models", "models"),
    "ui": ("ui", "ui"),
    "server": ("server", "server"),
    "scoring-service": ("service", "scoring_service"),
    "users": ("users", "app"),
}
"""Every command, in ``--help``'s order. A command's module is imported only when it runs (or for
``--help``): ``recommender score --service`` starts in a fraction of a second, without pandas or MLflow."""

ROOT_OPTIONS_WITH_VALUE = {"--home", "--tracking-uri", "--bank"}


def build_app(only: str | None = None) -> typer.Typer:
    """The root Typer app with every command, or with the command ``only`` alone (what :func:`main` runs)."""
    root = typer.Typer(
        name="recommender",
        help="Industrial-cooperation recommender: import substitution, joint projects and new production capacities "
             "for trade blocs.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
    )
    root.callback()(root_callback)
    for name, (module, attribute) in COMMANDS.items():
        if only is not None and name != only:
            continue
        target = getattr(importlib.import_module(f"recommender.cli.{module}"), attribute)
        root.add_typer(target, name=name) if isinstance(target, typer.Typer) else root.command(name)(target)
    return root


def invoked_command(argv: list[str]) -> str | None:
    """The command named on a command line (``recommender --home H score …`` → ``score``), or None."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ROOT_OPTIONS_WITH_VALUE:
            skip = True
        elif not arg.startswith("-"):
            return arg if arg in COMMANDS else None
    return None


def __getattr__(name: str):
    if name == "app":  # the whole app, for documentation tools and tests
        return build_app()
    raise AttributeError(name)


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
        build_app(invoked_command(sys.argv[1:]))(standalone_mode=False)
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
        from models.store import refusal, store_full, unreachable

        message = refusal(exc) or unreachable(exc) or store_full(exc)
        if message is None:
            raise
        console_err.print(f"[bold red]error:[/] {message}", highlight=False)
        sys.exit(2)
