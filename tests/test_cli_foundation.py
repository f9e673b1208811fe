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
