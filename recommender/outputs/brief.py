"""A country brief: one self-contained HTML file an analyst can read, print and forward.

No internet is needed to open it: charts are inline SVG drawn with matplotlib, the CSS is in the
page, and there are no scripts, fonts or external links. Sections: header (country, bloc, year,
data sources, model versions and their held-out quality, caveats), import substitution, joint
projects, charts, and an optional supply-shock scenario. Names come first, codes beside them.
"""

from __future__ import annotations

import html
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import rc_context
from matplotlib.figure import Figure

from features.registry import format_usd
from models.champion import current_champion, model_name
from models.errors import ModelError
from models.tasks import DIVERSIFICATION, IMPORT_SUBSTITUTION, JOINT_PROJECTS, get_task
from recommender import countries
from recommender.config import Config
from recommender.errors import RecommenderError
from recommender.outputs.files import atomic_output
from recommender.outputs.recommend import recommend
from recommender.pipeline import member_and_year, open_bank, trade_table

METRIC_NAMES = {"ndcg_at_10": "NDCG@10", "pooled_ap": "pooled AP"}
SECTIONS = ("summary", "new-capacities", "import-substitution", "joint-projects", "charts", "scenario")

CSS = """
body { font-family: "DejaVu Sans", Arial, sans-serif; color: #1d2733; max-width: 1100px; margin: 2em auto; padding: 0 1em; line-height: 1.45; }
h1 { font-size: 1.7em; margin-bottom: .2em; } h2 { border-bottom: 2px solid #2c6e9b; padding-bottom: .2em; margin-top: 2em; }
.sub { color: #5a6775; } .code { font-size: .8em; color: #6b7785; } table { border-collapse: collapse; width: 100%; margin: .8em 0; }
th, td { border-bottom: 1px solid #d5dde5; padding: .35em .5em; text-align: left; vertical-align: top; font-size: .92em; }
th { background: #eef3f7; } td.num { text-align: right; white-space: nowrap; } .caveat { background: #fff7e6; border-left: 4px solid #e0a030; padding: .6em 1em; }
nav ol { columns: 2; } figure { margin: 1em 0; page-break-inside: avoid; } figcaption { color: #5a6775; font-size: .9em; }
svg { max-width: 100%; height: auto; }
@media print { body { margin: 0; max-width: none; } nav { display: none; } h2 { page-break-before: always; } h2#summary { page-break-before: avoid; }
  tr, figure { page-break-inside: avoid; } a { color: inherit; text-decoration: none; } }
"""


@dataclass
class Brief:
    """The rendered page and what it holds (for tests and the CLI's report)."""

    html: str
    country: str
    year: int
    sections: list[str] = field(default_factory=list)
    charts: list[str] = field(default_factory=list)
    model_versions: dict[str, str] = field(default_factory=dict)


def _e(value) -> str:
    return html.escape(str(value))


def _named(code: str) -> str:
    return f"{_e(countries.country_name(code))} <span class='code'>{_e(code)}</span>"


def _product(code: str, label: str) -> str:
    name = label.split("(", 1)[1].rstrip(")") if "(" in label else label
    return f"{_e(name)} <span class='code'>{_e(code)}</span>"


def _svg(fig: Figure) -> str:
    buffer = io.StringIO()
    with rc_context({"svg.fonttype": "none"}):  # text stays text: selectable, searchable, small
        fig.savefig(buffer, format="svg", bbox_inches="tight")
    text = buffer.getvalue()
    return text[text.index("<svg"):]  # drop the XML prolog and doctype: inline in HTML


def _best_first(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows by calibrated probability (comparable across queries), or by score for a model without calibration."""
    return frame.sort_values("probability" if frame["probability"].notna().any() else "score", ascending=False)


def _table(headers: list[str], rows: list[list[str]], numeric: set[int] = frozenset()) -> str:
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td class='num'>{c}</td>" if i in numeric else f"<td>{c}</td>" for i, c in enumerate(r))
                   + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _model_quality(cfg: Config) -> dict[str, dict]:
    """For each task: the champion's version, its held-out decision metric (NDCG@10; pooled AP for
    diversification), the best baseline on it and the lift's interval."""
    client = cfg.store.client()
    out = {}
    for task in (DIVERSIFICATION, IMPORT_SUBSTITUTION, JOINT_PROJECTS):
        name = model_name(task, cfg.bloc.name)
        mv = current_champion(client, name)
        if mv is None:
            continue
        metric = get_task(task).decision_metric
        metrics = client.get_run(mv.run_id).data.metrics
        suffix = f"_test_{metric}"
        baselines = {k[len("baseline_"):-len(suffix)]: v for k, v in metrics.items()
                     if k.startswith("baseline_") and k.endswith(suffix)}
        best = max(baselines, key=baselines.get) if baselines else None
        out[task] = {"version": f"{name}/{mv.version}", "score": metrics.get(f"test_{metric}"), "baselines": baselines,
                     "metric": METRIC_NAMES.get(metric, metric),
                     "best": best, "lift": metrics.get("lift_vs_best_baseline"),
                     "low": metrics.get("lift_ci_low"), "high": metrics.get("lift_ci_high")}
    return out


def _new_capacities(brief: Brief, name: str, new: pd.DataFrame | None, top: int) -> str:
    """Section 2: the products the country should start making (diversification champion), with the member
    best placed to build each with it, the bloc's market, and an Atlas-style chart (density × PCI, size
    = probability)."""
    brief.sections.append("new-capacities")
    head = f"""<h2 id="new-capacities">2. New capacities to build</h2>
<p>Products {_e(name)} does not export competitively yet (RCA below 0.5 three years running) that it is likeliest
to start exporting competitively within the horizon, learnt from every country's history; the partner is the bloc
member strong in the product that trades most with {_e(name)}; the market is the bloc's imports of it from outside.</p>"""
    if new is None or not len(new):
        return head + "<p>No diversification model yet: run <code>recommender train --task diversification</code>.</p>"
    best = _best_first(new)
    rows = [[_product(r["product"], r["product_name"]), f"{r['probability']:.1%}" if pd.notna(r["probability"]) else "—",
             _named(r["partner"]) if r["partner"] else "—", f"{r['partner_rca']:.2f}" if pd.notna(r["partner_rca"]) else "—",
             format_usd(float(r["market_usd"])), _e(r["reasons"])] for _, r in best.head(top + 2).iterrows()]
    fig = Figure(figsize=(8, 5), layout="constrained")
    ax = fig.subplots()
    cand = best.head(150)
    weight = cand["probability"].fillna(0.0) if cand["probability"].notna().any() else cand["score"] - cand["score"].min()
    ax.scatter(cand["country_density"], cand["pci"], s=20 + 400 * weight / max(float(weight.max()), 1e-9), alpha=0.55,
               color="#2c6e9b", edgecolor="white")
    for _, r in cand.head(6).iterrows():
        ax.annotate(str(r["product"]), (r["country_density"], r["pci"]), fontsize=7, alpha=0.8)
    ax.set_xlabel("relatedness: density of the product for the country (Hidalgo et al. 2007)")
    ax.set_ylabel("complexity: PCI of the product")
    ax.set_title("Opportunities, as the Atlas of Economic Complexity draws them (size: probability)")
    brief.charts.append("opportunities")
    chart = (f"<figure id='chart-opportunities'>{_svg(fig)}<figcaption>Each dot is a product the country does not make "
             "yet; right = closer to what it already makes, up = more complex.</figcaption></figure>")
    return head + _table(["product", "probability", "partner", "partner RCA", "bloc market", "why"], rows, {1, 3, 4}) + chart


def build_brief(cfg: Config, country: str, *, year: int | None = None, top: int = 8,
                scenario_cut: str | None = None, log: Callable[[str], None] | None = None) -> Brief:
    """The brief for ``country`` (a bloc member) in ``year`` (default the bank's last); ``log(stage)`` hears each stage."""
    log = log or (lambda _: None)
    bank = open_bank(cfg)
    country, year = member_and_year(cfg, bank, country, year)
    years = bank.years("trade")
    members = set(cfg.bloc.members)
    span = [y for y in years if year - 9 <= y <= year]
    log(f"trade of {span[0]}–{span[-1]}")
    trade = trade_table(bank, span)
    now = trade[trade["year"] == year]
    into = now[now["importer"] == country]
    imports = into.groupby("product")["value_usd"].sum()
    extra = into[~into["exporter"].isin(members)].groupby("product")["value_usd"].sum().sort_values(ascending=False)
    world_exports = now.groupby(["exporter", "product"])["value_usd"].sum()
    quality = _model_quality(cfg)
    log("import substitution")
    try:
        subst, _ = recommend(cfg, IMPORT_SUBSTITUTION, year=year, countries=[country])
    except ModelError:
        subst = None
    log("joint projects")
    try:
        joint, _ = recommend(cfg, JOINT_PROJECTS, year=year, countries=[country])
    except ModelError:
        joint = None
    log("new capacities")
    try:
        new, _ = recommend(cfg, DIVERSIFICATION, year=year, countries=[country], features=["country_density", "pci"])
    except ModelError:
        new = None
    brief = Brief("", country, year, model_versions={t: q["version"] for t, q in quality.items()})
    name = countries.country_name(country)
    parts: list[str] = []

    # --- summary ---------------------------------------------------------------------------------
    source_rows = [[_e(s["table"]), _e(Path(s["path"]).name), _e(s.get("format", "")),
                    _e(f"{min(s['years'])}–{max(s['years'])}" if s.get("years") else "—")] for s in bank.sources]
    quality_rows = []
    for task, q in quality.items():
        lift = f"{q['lift']:+.1%} [{q['low']:+.1%}, {q['high']:+.1%}]" if q.get("lift") is not None else "—"
        best = f"{_e(q['best'])} {q['baselines'][q['best']]:.3f}" if q["best"] else "—"
        quality_rows.append([_e(task), _e(q["version"]), f"{q['metric']} {q['score']:.3f}" if q["score"] is not None else "—", best, lift])
    parts.append(f"""<h2 id="summary">1. Summary</h2>
<p><b>{_e(name)}</b> <span class='code'>{_e(country)}</span> in the {_e(cfg.bloc.name)} bloc
({', '.join(_e(countries.country_name(m)) for m in cfg.bloc.members if m != country)}), trade year {year}.
Imports of {format_usd(float(imports.sum()))}, of which {format_usd(float(extra.sum()))} from outside the bloc.</p>
<h3>Data sources</h3>{_table(["table", "file", "format", "years"], source_rows)}
<h3>Models and their held-out quality</h3>
{_table(["task", "model version", "held-out score", "best baseline", "lift (95% interval)"], quality_rows, {2, 3, 4})
 if quality_rows else "<p>No trained model yet: run <code>recommender train</code>. The tables below then show trade only.</p>"}
<div class="caveat"><b>How to read the scores.</b> A score ranks candidates within one query (an importer, or a
partner pair); <i>probability</i> is the calibrated chance, from held-out years, that the candidate turns out relevant
(a clear rise in the supplier's share, or in the pair's matched trade, within the model's horizon). Products are at the
bank's level ({_e(len(str(now['product'].iloc[0])) if len(now) else '?')}-character codes); a section or HS2 code hides products
the bloc does not make. Past trade is evidence of capability, not a forecast of policy.</div>""")
    brief.sections.append("summary")
    parts.append(_new_capacities(brief, name, new, top))

    # --- import substitution ---------------------------------------------------------------------
    rows = []
    for product, value in extra.head(top).items():
        label = subst[subst["product"] == product] if subst is not None else pd.DataFrame()
        best = _best_first(label).head(3) if len(label) else label
        total = float(imports.get(product, 0.0))
        product_label = best["product_name"].iloc[0] if len(best) else product
        if best.empty:
            rows.append([_product(product, product_label), format_usd(value), "—", "", "", "", "no bloc supplier scored"])
            continue
        for i, (_, r) in enumerate(best.iterrows()):
            share = float(into[(into["exporter"] == r["supplier"]) & (into["product"] == product)]["value_usd"].sum()) / total \
                if total else 0.0
            prob = f"{r['probability']:.2f}" if pd.notna(r["probability"]) else "—"
            rows.append([_product(product, product_label) if i == 0 else "", format_usd(value) if i == 0 else "",
                         _named(r["supplier"]), f"{r['score']:.2f}", prob, f"{share:.1%}", _e(r["reasons"])])
    parts.append(f"""<h2 id="import-substitution">3. Import substitution</h2>
<p>{_e(name)}'s largest import bills from outside the bloc in {year}, and the bloc members best placed to supply
them instead (score, calibrated probability, their current share of {_e(name)}'s imports of the product, and the three
strongest reasons).</p>
{_table(["product", "extra-bloc imports", "bloc supplier", "score", "probability", "current share", "why"], rows, {1, 3, 4, 5})}""")
    brief.sections.append("import-substitution")

    # --- joint projects --------------------------------------------------------------------------
    jrows = []
    if joint is not None and len(joint):
        for _, r in _best_first(joint).head(top + 2).iterrows():
            partner = r["partner_b"] if r["partner_a"] == country else r["partner_a"]
            prob = f"{r['probability']:.2f}" if pd.notna(r["probability"]) else "—"
            jrows.append([_named(partner), _product(r["product"], r["product_name"]), f"{r['score']:.2f}", prob, _e(r["reasons"])])
    parts.append(f"""<h2 id="joint-projects">4. Joint projects</h2>
<p>Sectors {_e(name)} and a partner could develop together: pairs whose two-way trade in the product is likely to
grow (the model's best partner × product candidates).</p>
{_table(["partner", "product", "score", "probability", "why"], jrows, {2, 3}) if jrows else "<p>No joint-projects model yet.</p>"}""")
    brief.sections.append("joint-projects")

    # --- charts ----------------------------------------------------------------------------------
    log("charts")
    figures = []
    if subst is not None and len(subst):
        cand = subst.assign(extra=subst["product"].map(extra).fillna(0.0),
                            capacity=[float(world_exports.get((s, p), 0.0)) for s, p in zip(subst["supplier"], subst["product"], strict=True)])
        cand = cand[(cand["extra"] > 0) & (cand["capacity"] > 0)]
        cand = _best_first(cand).head(80)
        fig = Figure(figsize=(8, 5), layout="constrained")
        ax = fig.subplots()
        weight = cand["probability"].fillna(0.05) if cand["probability"].notna().any() else (cand["score"] - cand["score"].min() + 0.1)
        ax.scatter(cand["capacity"] / 1e6, cand["extra"] / 1e6, s=30 + 400 * weight / max(float(weight.max()), 1e-9),
                   alpha=0.55, color="#2c6e9b", edgecolor="white")
        for _, r in cand.head(6).iterrows():
            ax.annotate(f"{r['supplier']} · {r['product']}", (r["capacity"] / 1e6, r["extra"] / 1e6), fontsize=7, alpha=0.8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("feasibility: the bloc supplier's world exports of the product (USD m, log)")
        ax.set_ylabel(f"attractiveness: {country}'s extra-bloc imports (USD m, log)")
        ax.set_title("Feasibility vs attractiveness (size: probability)")
        figures.append(("feasibility", "Each dot is a bloc supplier × product; larger dots are likelier substitutions.", _svg(fig)))
    top_products = list(extra.head(5).index)
    if top_products:
        hist = trade[(trade["importer"] == country) & trade["product"].isin(top_products)]
        by = hist.assign(source=np.where(hist["exporter"].isin(members), "from the bloc", "from outside")) \
            .pivot_table(index="year", columns="source", values="value_usd", aggfunc="sum").reindex(span).fillna(0.0) / 1e9
        fig = Figure(figsize=(9, 4), layout="constrained")
        ax = fig.subplots()
        for column, colour in (("from outside", "#c0504d"), ("from the bloc", "#2c6e9b")):
            if column in by:
                ax.plot(by.index, by[column], marker="o", color=colour, label=column)
        ax.set_ylabel("USD bn")
        ax.set_title(f"{country}'s imports of its top {len(top_products)} extra-bloc import products, by source")
        ax.legend()
        figures.append(("trend", f"Imports of {', '.join(top_products)} over {span[0]}–{span[-1]}.", _svg(fig)))
    if quality:
        fig = Figure(figsize=(9, 4), layout="constrained")
        axes = fig.subplots(1, len(quality), squeeze=False)[0]
        for ax, (task, q) in zip(axes, quality.items(), strict=True):
            items = sorted(q["baselines"].items(), key=lambda kv: kv[1])[-5:] + [("model", q["score"] or 0.0)]
            ax.barh([k for k, _ in items], [v for _, v in items], color=["#9aa8b5"] * (len(items) - 1) + ["#2c6e9b"])
            ax.set_title(task, fontsize=9)
            ax.set_xlabel(f"held-out {q['metric']}")  # NDCG@10, or pooled AP for diversification
        figures.append(("quality", "The model against the heuristics economists use, on test years it never saw.", _svg(fig)))
    chart_html = "".join(f"<figure id='chart-{key}'>{svg}<figcaption>{_e(caption)}</figcaption></figure>"
                         for key, caption, svg in figures)
    parts.append(f"""<h2 id="charts">5. Charts</h2>{chart_html or "<p>No data for charts.</p>"}""")
    brief.sections.append("charts")
    brief.charts += [key for key, _, _ in figures]

    # --- scenario --------------------------------------------------------------------------------
    if scenario_cut:
        from recommender.outputs.scenario import run_scenario

        sc = run_scenario(cfg, country, scenario_cut, year=year, top=top)
        srows = []
        for product, group in sc.table.groupby("product", sort=False):
            first = group.iloc[0]
            fillers = group.dropna(subset=["supplier"]).head(3)
            who = ", ".join(f"{_e(countries.country_name(s))} ({c:.0%})" for s, c in zip(fillers["supplier"], fillers["covers_share"], strict=True))
            srows.append([_product(product, first["product_name"]), format_usd(first["lost_usd"]), format_usd(first["coverable_usd"]),
                          who or "no bloc supplier"])
        t = sc.totals
        parts.append(f"""<h2 id="scenario">6. Scenario: imports from {_e(', '.join(sc.cut[:10]))}{' …' if len(sc.cut) > 10 else ''} stop</h2>
<p>Gap {format_usd(t['gap_usd'])} over {t['products']} products; coverable by the bloc at current export levels
{format_usd(t['coverable_usd'])}; uncovered {format_usd(t['uncovered_usd'])}.</p>
{_table(["product", "lost imports", "coverable", "who could fill it (share of the gap)"], srows, {1, 2})}""")
        brief.sections.append("scenario")

    toc = "".join(f"<li><a href='#{s}'>{s.replace('-', ' ').capitalize()}</a></li>" for s in brief.sections)
    brief.html = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Brief: {_e(name)} · {_e(cfg.bloc.name)} · {year}</title>
<style>{CSS}</style></head><body>
<h1>Industrial-cooperation brief: {_e(name)} <span class='code'>{_e(country)}</span></h1>
<p class="sub">{_e(cfg.bloc.name)} · trade year {year} · models {_e(', '.join(brief.model_versions.values()) or 'none')}</p>
<nav><b>Contents</b><ol>{toc}</ol></nav>
{''.join(parts)}
</body></html>
"""
    return brief


def write_brief(cfg: Config, country: str, output: str | Path, *, year: int | None = None, top: int = 8,
                scenario_cut: str | None = None, track: bool = True, log: Callable[[str], None] | None = None) -> Brief:
    """Build the brief, write it atomically to ``output`` and log it as the artifact of a ``brief`` run."""
    import mlflow

    output = Path(output)
    if output.suffix.lower() not in {".html", ".htm"}:
        raise RecommenderError(f"{output}: the brief is an HTML file; name it .html")
    brief = build_brief(cfg, country, year=year, top=top, scenario_cut=scenario_cut, log=log)
    if log:
        log(f"writing {output.name}")
    with atomic_output(output) as tmp:
        Path(tmp).write_text(brief.html, encoding="utf-8")
    if track:
        exp = cfg.store.experiment_id("brief", "Country briefs: the HTML files written by `recommender brief`.")
        with cfg.store.active(), mlflow.start_run(experiment_id=exp, run_name=f"brief · {brief.country} · {brief.year}"):
            mlflow.log_params({"country": brief.country, "year": brief.year, "bloc": cfg.bloc.name,
                               "scenario_cut": scenario_cut or "", **{f"model_{k}": v for k, v in brief.model_versions.items()}})
            mlflow.log_artifact(str(output))
    return brief
