from pathlib import Path

import pytest

from recommender import countries
from recommender.config import BLOCS, Config, resolve_bloc
from recommender.errors import RecommenderError


def test_named_blocs_resolve_case_insensitively():
    sco = resolve_bloc("sco")
    assert sco.name == "SCO"
    assert set(sco.members) == set(BLOCS["SCO"]) and len(sco.members) == 10
    assert "KAZ" in sco and "USA" not in sco


def test_default_bloc_is_sco():
    assert resolve_bloc(None).name == "SCO"


def test_custom_bloc_gets_a_stable_short_name():
    small = resolve_bloc("uzb, kaz,RUS")
    assert small.members == ("KAZ", "RUS", "UZB") and small.name == "KAZ-RUS-UZB"
    big = resolve_bloc("KAZ,UZB,RUS,CHN,IND")
    assert big.name == resolve_bloc("IND,CHN,RUS,UZB,KAZ").name
    assert big.name.startswith("custom-") and len(big.name) == len("custom-") + 8


@pytest.mark.parametrize("spec", ["KAZ", "KAZ,XXQ", "KAZ,uzbek"])
def test_bad_bloc_names_the_problem(spec):
    with pytest.raises(RecommenderError, match="bloc"):
        resolve_bloc(spec)


def test_home_and_tracking_uri_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("RECOMMENDER_HOME", str(tmp_path / "env-home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = Config.from_env()
    assert cfg.home == (tmp_path / "env-home").absolute()
    assert cfg.bank_dir == cfg.home / "bank"
    assert cfg.mlflow_uri == f"sqlite:///{(cfg.home / 'mlflow.db').as_posix()}"
    explicit = Config.from_env(home=tmp_path / "cli-home", tracking_uri="sqlite:///x.db")
    assert explicit.home == (tmp_path / "cli-home").absolute() and explicit.mlflow_uri == "sqlite:///x.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert Config.from_env().mlflow_uri == "http://127.0.0.1:5000"


def test_default_home_is_relative_dot_recommender(monkeypatch):
    monkeypatch.delenv("RECOMMENDER_HOME", raising=False)
    assert Config.from_env().home == Path(".recommender").absolute()


def test_country_aliases_and_numeric_codes():
    assert countries.canonical(" rom ") == "ROU"
    assert countries.unknown_codes(["ROM", "ANT", "SCG", "CHN", "XXQ"]) == ["XXQ"]
    table = countries.numeric_to_iso3()
    assert table[156] == "CHN" and table[398] == "KAZ" and table[842] == "USA" and table[699] == "IND"
    assert countries.country_name("KAZ") == "Kazakhstan"
