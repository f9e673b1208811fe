"""The heuristics analysts use today, as scores on the same candidate tables as the model.

Higher score = ranked first. Missing inputs score lowest (``-inf``), never invented.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from models.tasks import IMPORT_SUBSTITUTION, JOINT_PROJECTS

Baseline = Callable[[pd.DataFrame], np.ndarray]


def _col(table: pd.DataFrame, name: str) -> np.ndarray:
    return np.nan_to_num(table[name].to_numpy(dtype=float), nan=-np.inf)


def export_potential(table: pd.DataFrame) -> np.ndarray:
    """Untapped export potential in the spirit of ITC's Export Potential Indicator (Decreux & Spies 2016).

    potential = supply × demand × ease, with supply the supplier's share of world exports of the
    product, demand the importer's imports of it, ease the bilateral trade-intensity index
    (clipped to [0.1, 10], 1 where unknown); score = max(potential − actual flow, 0).
    """
    supply = table["supplier_world_share"].fillna(0).to_numpy(dtype=float)
    demand = table["importer_imports"].fillna(0).to_numpy(dtype=float)
    ease = np.clip(table["trade_intensity"].fillna(1.0).to_numpy(dtype=float), 0.1, 10.0)
    return np.maximum(supply * demand * ease - table["flow_value"].fillna(0).to_numpy(dtype=float), 0.0)


def _random(seed: int) -> Baseline:
    def score(table: pd.DataFrame) -> np.ndarray:
        return np.random.default_rng(seed).random(len(table))
    return score


def baselines(task: str, *, seed: int = 0) -> dict[str, Baseline]:
    """Baselines by name for ``task``."""
    if task == IMPORT_SUBSTITUTION:
        return {
            "current_share": lambda t: _col(t, "supplier_share"),
            "momentum": lambda t: _col(t, "supplier_share_change_3y"),
            "supplier_rca": lambda t: _col(t, "supplier_rca"),
            "supplier_density": lambda t: _col(t, "supplier_density"),
            "export_potential": export_potential,
            "random": _random(seed),
        }
    if task == JOINT_PROJECTS:
        return {
            "two_way_share": lambda t: _col(t, "two_way_share"),
            "momentum": lambda t: _col(t, "two_way_share_change_3y"),
            "grubel_lloyd": lambda t: _col(t, "grubel_lloyd"),
            "pair_share": lambda t: _col(t, "pair_share"),
            "complementarity": lambda t: np.nan_to_num(
                (t["complementarity"] + t["reverse_complementarity"]).to_numpy(dtype=float) / 2, nan=-np.inf),
            "random": _random(seed),
        }
    raise ValueError(f"unknown task {task!r}")
