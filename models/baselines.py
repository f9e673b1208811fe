"""The heuristics analysts use today, as scores on the same candidate tables as the model.

Higher score = ranked first. One rule for missing inputs: a candidate whose heuristic cannot be
computed scores ``-inf`` and ranks last (the metrics treat ``-inf`` and NaN alike), never an
invented value. Every baseline varies within its query: a value that is constant for a whole
query group ranks nothing.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

Baseline = Callable[[pd.DataFrame], np.ndarray]


def _missing_last(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    return np.where(np.isfinite(values), values, -np.inf)


def column(name: str) -> Baseline:
    """Rank by one feature column, higher first, missing last."""
    def score(table: pd.DataFrame) -> np.ndarray:
        return _missing_last(table[name].to_numpy(dtype=float))
    score.__name__ = name
    return score


def export_potential(table: pd.DataFrame) -> np.ndarray:
    """Untapped export potential in the spirit of ITC's Export Potential Indicator (Decreux & Spies 2016).

    potential = supply × demand × ease, with supply the supplier's share of world exports of the
    product, demand the importer's imports of it, ease the bilateral trade-intensity index
    (clipped to [0.1, 10]; 1, i.e. neutral, where unknown); score = max(potential − actual flow, 0).
    Missing supply or demand → missing (last).
    """
    supply = table["supplier_world_share"].to_numpy(dtype=float)
    demand = table["importer_imports"].to_numpy(dtype=float)
    ease = np.clip(table["trade_intensity"].fillna(1.0).to_numpy(dtype=float), 0.1, 10.0)
    return _missing_last(np.maximum(supply * demand * ease - table["flow_value"].fillna(0).to_numpy(dtype=float), 0.0))


def product_complementarity(table: pd.DataFrame) -> np.ndarray:
    """Product-level trade complementarity of a pair in product p, both directions averaged.

    :math:`\\tfrac12 (RCA_{a,p} \\cdot m_{b,p} + RCA_{b,p} \\cdot m_{a,p})`, with :math:`m_{j,p}` the
    share of p in j's imports: a is competitive where b buys, and vice versa (the product-level
    terms of Michaely's 1996 complementarity index). A missing RCA counts as 0 (no exports);
    a missing import share makes that direction missing.
    """
    a = np.nan_to_num(table["partner_a_rca"].to_numpy(dtype=float)) * table["partner_b_import_share"].to_numpy(dtype=float)
    b = np.nan_to_num(table["partner_b_rca"].to_numpy(dtype=float)) * table["partner_a_import_share"].to_numpy(dtype=float)
    both = np.vstack([a, b])
    known = np.isfinite(both).sum(axis=0)
    return _missing_last(np.where(known > 0, np.nansum(both, axis=0) / np.maximum(known, 1), np.nan))


def random(seed: int) -> Baseline:
    """Uniform random scores: the floor every scorer must beat."""
    def score(table: pd.DataFrame) -> np.ndarray:
        return np.random.default_rng(seed).random(len(table))
    return score


ATLAS_BALANCED = (0.50, 0.15, 0.35)
"""Weights of (nearness, PCI, COG) of the Atlas of Economic Complexity's growth-opportunity ranking by default."""
ATLAS_LOW_HANGING = (0.60, 0.15, 0.25)
"""The Atlas's "low-hanging fruit" strategy: more weight on nearness (1 − distance)."""


def atlas(weights: tuple[float, float, float] = ATLAS_BALANCED, group: tuple[str, ...] = ("country", "year")) -> Baseline:
    """The Atlas of Economic Complexity's growth-opportunity score (Growth Lab, Harvard; Hausmann et al. 2014,
    atlas.cid.harvard.edu "Growth opportunities"): for a country's products with RCA < 1,
    ``w_d · z(−distance) + w_pci · z(PCI) + w_cog · z(COG)``, each variable standardised within the
    country's candidates of the year (``group``); weights 50/15/35 by default (balanced portfolio),
    60/15/25 for "low-hanging fruit" (:data:`ATLAS_LOW_HANGING`). A missing input counts as the
    group's mean (z = 0); a candidate missing all three ranks last.
    """
    w_near, w_pci, w_cog = weights

    def score(table: pd.DataFrame) -> np.ndarray:
        keys = [table[g] for g in group]
        parts = {"near": -table["country_distance"].astype(float), "pci": table["pci"].astype(float),
                 "cog": table["country_cog"].astype(float)}
        z = {}
        for name, values in parts.items():
            grouped = values.groupby(keys, observed=True, sort=False)
            std = grouped.transform("std").replace(0.0, np.nan)
            z[name] = ((values - grouped.transform("mean")) / std).fillna(0.0).to_numpy()
        known = np.column_stack([np.isfinite(v.to_numpy()) for v in parts.values()]).any(axis=1)
        total = w_near * z["near"] + w_pci * z["pci"] + w_cog * z["cog"]
        return _missing_last(np.where(known, total, np.nan))
    score.__name__ = "atlas"
    return score
