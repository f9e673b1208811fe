"""The country brief: self-contained HTML, every section and chart, logged to MLflow, rendered by headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest
from mlflow import MlflowClient

from recommender.cli import main
from recommender.outputs.brief import SECTIONS, write_brief


@pytest.fixture(scope="module")
def brief(pipeline_home, tmp_path_factory):
    cfg, _ = pipeline_home
    path = tmp_path_factory.mktemp("brief") / "brief.html"
    return cfg, path, write_brief(cfg, "KAZ", path, scenario_cut="ASEAN")


def test_brief_is_self_contained_and_complete(brief):
    cfg, path, result = brief
    page = path.read_text(encoding="utf-8")
    assert result.sections == list(SECTIONS) and result.charts == ["opportunities", "feasibility", "trend", "quality"]
    assert page.count("<svg") == 4 and "<script" not in page.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page) and "@import" not in page
    assert not re.search(r"url\((?!#)", page)  # only the SVGs' own clip paths, nothing fetched
    for section in SECTIONS:
        assert f'id="{section}"' in page
    assert "Kazakhstan" in page and "KAZ" in page  # names, with codes beside them
    assert set(result.model_versions) == {"diversification", "import-substitution", "joint-projects"}
    assert "@media print" in page and "<nav>" in page


def test_brief_is_logged_as_an_mlflow_artifact(brief):
    cfg, _, result = brief
    client = MlflowClient(cfg.mlflow_uri)
    exp = client.get_experiment_by_name("brief")
    runs = client.search_runs([exp.experiment_id], filter_string="params.country = 'KAZ'")
    assert runs and runs[0].data.params["year"] == str(result.year)
    assert "brief.html" in [a.path for a in client.list_artifacts(runs[0].info.run_id)]


def test_brief_renders_in_headless_chromium(brief, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None or shutil.which("pdftotext") is None:
        pytest.skip("chromium or pdftotext is not installed: `make browser` installs them (Debian packages)")
    _, path, result = brief
    pdf, png = tmp_path / "brief.pdf", tmp_path / "brief.png"
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    subprocess.run([*flags, f"--print-to-pdf={pdf}", "--no-pdf-header-footer", path.as_uri()], capture_output=True, timeout=600, check=True)
    subprocess.run([*flags, "--window-size=1200,2400", f"--screenshot={png}", path.as_uri()], capture_output=True, timeout=600, check=True)
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    # what a reader sees on paper: every section title, every chart's title and caption
    for title in ("1. Summary", "2. New capacities to build", "3. Import substitution", "4. Joint projects", "5. Charts",
                  "6. Scenario", "Opportunities, as the Atlas", "Feasibility vs attractiveness", "by source", "held-out NDCG@10", "Data sources", "How to read the scores"):
        assert title in text, title
    pages = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout
    assert int(re.search(r"Pages:\s+(\d+)", pages).group(1)) >= 3  # sections start on new pages when printed
    from PIL import Image

    image = Image.open(png).convert("L")
    assert image.size == (1200, 2400) and len(set(image.getdata())) > 50  # drawn, not blank


def test_brief_errors_are_clear(pipeline_home, tmp_path, monkeypatch, capsys):
    cfg, _ = pipeline_home
    for args, says in ((["--country", "USA"], "not a member of SCO"), (["--country", "KAZ", "--output", str(tmp_path / "b.pdf")], ".html"),
                       (["--country", "KAZ", "--year", "1900"], "not in the data bank")):
        monkeypatch.setattr(sys, "argv", ["recommender", "--home", str(cfg.home), "brief", *args])
        with pytest.raises(SystemExit) as exit_info:
            main()
        assert exit_info.value.code == 2 and says in capsys.readouterr().err
    assert not (tmp_path / "b.pdf").exists()


def test_brief_by_name_reports_its_stages_in_a_log(pipeline_home, tmp_path, monkeypatch, capsys):
    """--country takes a name; off a terminal (captured here) each stage is one line on stderr, the result on stdout."""
    cfg, _ = pipeline_home
    out = tmp_path / "kaz.html"
    monkeypatch.setattr(sys, "argv", ["recommender", "--home", str(cfg.home), "brief", "--country", "Kazakhstan",
                                      "--output", str(out)])
    main()
    captured = capsys.readouterr()
    stages = [line.split(": ", 1)[1].rsplit(" (", 1)[0] for line in captured.err.splitlines() if line.startswith("brief on ")]
    assert stages == [stages[0], "import substitution", "joint projects", "new capacities", "charts", "writing kaz.html"]
    assert stages[0].startswith("trade of ") and out.is_file() and "wrote the brief on KAZ" in captured.out
