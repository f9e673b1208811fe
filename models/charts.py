"""Charts of a training run, drawn on :class:`matplotlib.figure.Figure` objects.

No pyplot and no backend selection: importing this module (or the pipeline) leaves a
notebook's inline backend alone.
"""

from __future__ import annotations

from pathlib import Path

import lightgbm as lgb
import pandas as pd
from matplotlib.figure import Figure

from models.evaluation import Evaluation

MODEL_COLOUR, BASELINE_COLOUR = "#d9822b", "#8a9bb0"


def _labelled(fig: Figure, ax, path: Path, *, title: str, xlabel: str, ylabel: str = "", legend: bool = False) -> None:
    """Titles and labels, a legend if asked, then a tight layout saved as a PNG."""
    ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)
    ax.set_title(title)
    if legend:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def feature_importance(booster: lgb.Booster, path: Path, top: int = 25) -> None:
    gain = pd.Series(booster.feature_importance("gain"), index=booster.feature_name()).sort_values().tail(top)
    fig = Figure(figsize=(8, 0.3 * len(gain) + 1.5))
    ax = fig.subplots()
    ax.barh(gain.index, gain.to_numpy() / max(gain.sum(), 1e-12), color="#3b6ea8")
    _labelled(fig, ax, path, title="Feature importance (gain)", xlabel="share of total gain (top features)")


def model_vs_baselines(evaluation: Evaluation, path: Path) -> None:
    table = evaluation.table("ndcg_at_10")["overall"].sort_values()
    fig = Figure(figsize=(7, 0.45 * len(table) + 1.5))
    ax = fig.subplots()
    ax.barh(table.index, table.to_numpy(), color=[MODEL_COLOUR if n == "model" else BASELINE_COLOUR for n in table.index])
    for y, v in enumerate(table.to_numpy()):
        ax.text(v, y, f" {v:.3f}", va="center")
    ax.set_xlim(0, max(1.0, table.max() * 1.15))
    _labelled(fig, ax, path, title="Model vs baselines", xlabel=f"NDCG@10 on test years {', '.join(map(str, evaluation.test_years))}")


def metric_by_year(evaluation: Evaluation, path: Path) -> None:
    table = evaluation.table("ndcg_at_10").drop(columns="overall")
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    for name, row in table.iterrows():
        ax.plot([int(c) for c in row.index], row.to_numpy(), marker="o", lw=2.5 if name == "model" else 1, label=name)
    _labelled(fig, ax, path, title="Metric by test year", xlabel="test year", ylabel="NDCG@10", legend=True)


def reliability(curve: pd.DataFrame, path: Path) -> None:
    """Reliability diagram: mean predicted probability vs observed frequency per bin."""
    fig = Figure(figsize=(5, 5))
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], ls="--", color=BASELINE_COLOUR, label="perfectly calibrated")
    ax.plot(curve["predicted"], curve["observed"], marker="o", color=MODEL_COLOUR, label="model (out of fold)")
    _labelled(fig, ax, path, title="Calibration", xlabel="predicted probability of relevance ≥ 1", ylabel="observed frequency", legend=True)
