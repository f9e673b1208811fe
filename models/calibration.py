"""Calibrated probabilities: P(relevance ≥ 1 | model score), by isotonic regression on out-of-fold scores.

LambdaRank scores order candidates within a query; they are not probabilities and are not
comparable across queries. The calibration maps a score to the share of candidates with that
score that turned out relevant in held-out test years (Zadrozny & Elkan 2002), so lists that mix
queries can be ranked by probability. It is stored as JSON (the isotonic step function's
thresholds), never pickled, and applied with linear interpolation between thresholds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression


def fit_calibration(score: np.ndarray, relevance: np.ndarray) -> dict:
    """``{"x": thresholds, "y": probabilities, "n": rows, "positives": share}`` from out-of-fold scores."""
    s = np.asarray(score, dtype=float)
    y = (np.asarray(relevance, dtype=float) >= 1).astype(float)
    keep = np.isfinite(s) & np.isfinite(np.asarray(relevance, dtype=float))
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(s[keep], y[keep])
    return {"x": iso.X_thresholds_.tolist(), "y": iso.y_thresholds_.tolist(), "n": int(keep.sum()),
            "positives": float(y[keep].mean()) if keep.any() else float("nan")}


def apply_calibration(calibration: dict, score: np.ndarray) -> np.ndarray:
    """Probabilities for ``score`` (clipped to the fitted range); NaN where the score is missing."""
    x, y = np.asarray(calibration["x"], dtype=float), np.asarray(calibration["y"], dtype=float)
    s = np.asarray(score, dtype=float)
    if x.size == 0:
        return np.full(s.shape, np.nan)
    return np.where(np.isfinite(s), np.interp(s, x, y), np.nan)


def reliability_curve(probability: np.ndarray, relevance: np.ndarray, *, bins: int = 10) -> pd.DataFrame:
    """Mean predicted probability and observed frequency per quantile bin of the predictions."""
    frame = pd.DataFrame({"p": probability, "y": (np.asarray(relevance, dtype=float) >= 1).astype(float)}).dropna()
    if frame.empty:
        return pd.DataFrame(columns=["bin", "predicted", "observed", "count"])
    frame["bin"] = pd.qcut(frame["p"].rank(method="first"), q=min(bins, len(frame)), labels=False)
    out = frame.groupby("bin").agg(predicted=("p", "mean"), observed=("y", "mean"), count=("y", "size")).reset_index()
    return out


def cross_fitted_reliability(score: np.ndarray, relevance: np.ndarray, year: np.ndarray) -> pd.DataFrame:
    """Reliability of the calibration on data it was not fitted on: each test year calibrated on the others.

    With a single test year there is nothing to cross-fit; the curve is then in-sample (``cross_fitted`` False).
    """
    years = np.unique(year)
    probability = np.full(len(score), np.nan)
    for y in years:
        mask = year == y
        source = ~mask if len(years) > 1 else mask
        probability[mask] = apply_calibration(fit_calibration(score[source], relevance[source]), score[mask])
    curve = reliability_curve(probability, relevance)
    curve["cross_fitted"] = len(years) > 1
    return curve
