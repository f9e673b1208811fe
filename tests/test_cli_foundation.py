"""The CLI as a user runs it: exit codes and messages (the demo itself: tests/test_cli_usage.py)."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd

from recommender.bank import DataBank
from tests.conftest import bank_state


def run(home, *args, check=True):
    proc = subprocess.run([sys.executable, "-m", "recommender", "--home", str(home), *map(str, args)],
                          capture_output=True, text=True, timeout=600)
    if check:
        assert proc.returncode == 0, proc.stderr + proc.stdout
    return proc


def test_bad_file_exits_non_zero_with_a_message_and_no_write(tmp_path):
    home = tmp_path / "home"
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"year": [2010, 2010], "exporter": ["KAZ", "QQQ"], "importer": ["CHN", "CHN"],
                  "product": ["01", "01"], "value_usd": [1.0, -2.0]}).to_csv(bad, index=False)
    proc = run(home, "ingest", "trade", bad, check=False)
    assert proc.returncode == 2
    assert "bad.csv" in proc.stderr and "unknown exporter code(s) QQQ" in proc.stderr and "line(s) 3" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert bank_state(DataBank(home / "bank")) == {}


def test_usage_error_exits_non_zero(tmp_path):
    proc = run(tmp_path, "ingest", "trade", tmp_path / "nope.csv", check=False)
    assert proc.returncode != 0 and "nope.csv" in (proc.stderr + proc.stdout)


def test_a_command_imports_only_its_own_module_and_the_thin_client_no_pandas_or_mlflow():
    """``recommender score --service`` is fast because the CLI loads the invoked command alone: building the
    app for ``score`` and importing the service client leaves pandas, MLflow and LightGBM unloaded."""
    import subprocess
    import sys

    from recommender.cli import COMMANDS, build_app, invoked_command

    assert invoked_command(["--home", "h", "--tracking-uri", "u", "score", "f.csv"]) == "score"
    assert invoked_command(["--home=h", "scoring-service"]) == "scoring-service"
    assert invoked_command(["--help"]) is None and invoked_command(["nonsense"]) is None
    names = [c.name for c in __import__("typer").main.get_command(build_app()).commands.values()]
    assert sorted(names) == sorted(COMMANDS)
    code = ("import sys; from recommender.cli import build_app; build_app('score'); import recommender.service.client; "
            "print(sorted(m for m in ('pandas', 'mlflow', 'lightgbm', 'pyarrow', 'duckdb') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, check=True).stdout
    assert loaded.strip() == "[]"
