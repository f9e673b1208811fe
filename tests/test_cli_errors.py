"""Every command answers bad arguments with exit 2 and a short message, never a traceback."""

from __future__ import annotations

import sys

import pytest

from recommender.cli import main

T = ["--task", "import-substitution"]
CASES = [
    (["train"], "Missing"),
    (["train", "--task", "nope"], "nope"),
    (["recommend", *T, "--top", "abc"], "--top"),
    (["train", *T, "--test-years", "2008,x"], "--test-years"),
    (["train", *T, "--param", "learning_rate=abc"], "learning_rate"),
    (["train", *T, "--param", "nope=1"], "unknown model parameter"),
    (["train", *T, "--param", "subsample_freq=x"], "subsample_freq"),
    (["train", *T, "--thresholds", "1,2"], "--thresholds"),
    (["train", *T, "--seeds", "0"], "--seeds"),
    (["train", *T, "--horizon", "0"], "horizon"),
    (["score", "missing.csv", *T], "missing.csv"),
    (["score", "missing.csv"], "Missing"),
    (["recommend", *T, "--model-uri", "http://127.0.0.1:9/m"], "not accepted"),
    (["recommend", *T, "--model-uri", "/tmp/some/model"], "not accepted"),
    (["ingest", "trade"], "Missing"),
    (["ingest", "trade", "x.csv", "--format", "xml"], "--format"),
    (["ingest", "capacity", "x.csv", "--format", "baci"], "--format"),
    (["ingest", "trade", "x.csv", "--classification", "sitc"], "--classification"),
    (["train", *T, "--product-level", "3"], "--product-level"),
    (["frobnicate"], "frobnicate"),
]


@pytest.mark.parametrize(("args", "says"), CASES, ids=[" ".join(a) for a, _ in CASES])
def test_bad_arguments_exit_2_with_a_message(args, says, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["recommender", "--home", str(tmp_path / "home"), *args])
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main()
    captured = capsys.readouterr()
    text = captured.err + captured.out
    assert exit_info.value.code == 2, text
    assert "Traceback" not in text and says in text
    assert len(text.strip().splitlines()) <= 8, text
