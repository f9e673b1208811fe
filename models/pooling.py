"""Learn from the world, not only the bloc: candidates for many pseudo-blocs, pooled into training.

A bloc of ten members has ten importers and a few dozen queries a year, yet the dynamics the
tasks rank — a supplier taking share in an importer's market, two countries' matched trade
growing — are the same everywhere. :func:`pseudo_blocs` draws country sets of the bloc's size
from the world's larger traders; :func:`pooled_dataset` builds their candidates, features and
labels exactly as for the bloc (features relative to each set), tagged by a ``pool`` column so
their queries never merge with the bloc's. Training folds add them only for training years;
validation and test stay the bloc's own queries (:func:`models.evaluation.fold_split`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection

import numpy as np
import pandas as pd

from features.assemble import BaseTables, build_base
from features.trade import TradeView
from models.tasks import BLOC_POOL, POOL, WEIGHT, Task


def with_pool(dataset: pd.DataFrame, pool: pd.DataFrame | None) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The bloc's table tagged ``pool = "bloc"`` when a non-empty pool joins it (queries never merge); else as is."""
    if pool is None or pool.empty:
        return dataset, None
    return dataset.assign(**{POOL: BLOC_POOL}), pool


def pseudo_blocs(trade: TradeView | pd.DataFrame, bloc: Collection[str], *, n_sets: int, seed: int = 0,
                 candidates: int = 120) -> list[tuple[str, ...]]:
    """``n_sets`` random country sets of the bloc's size from the ``candidates`` largest traders
    (exports plus imports, from a :class:`~features.trade.TradeView` or a flow table).

    Deterministic for a seed. The bloc itself is never drawn; its members may appear in sets.
    """
    view = trade if isinstance(trade, TradeView) else TradeView.from_trade(trade, bloc)
    totals = (view.exports.groupby("exporter", observed=True)["value"].sum()
              .add(view.imports.groupby("importer", observed=True)["imports"].sum(), fill_value=0).sort_values(ascending=False))
    pool = np.asarray(sorted(totals.index[:candidates]), dtype=object)
    size = min(len(set(bloc)), len(pool))
    rng = np.random.default_rng(seed)
    own = tuple(sorted(set(bloc)))
    sets: list[tuple[str, ...]] = []
    while len(sets) < n_sets and size >= 2:
        drawn = tuple(sorted(rng.choice(pool, size=size, replace=False)))
        if drawn != own and drawn not in sets:
            sets.append(drawn)
    return sets


def pooled_dataset(task: Task, base: BaseTables, trade: TradeView | pd.DataFrame, sets: list[tuple[str, ...]], years: Collection[int], *,
                   capacity: pd.DataFrame | None = None, geography: pd.DataFrame | None = None,
                   products: pd.DataFrame | None = None, log: Callable[[str], None] = lambda _m: None) -> pd.DataFrame:
    """Labelled candidates of every set in ``sets``, built like the bloc's (``base`` lends its world tables)."""
    frames = []
    for i, members in enumerate(sets):
        other = build_base(trade, members, capacity=capacity, geography=geography, products=products,
                           complexity=base.complexity)
        table = task.build_dataset(other, years)
        frames.append(table[table["relevance"].notna()].assign(**{POOL: f"set{i:03d}"}))
        if (i + 1) % 5 == 0 or i + 1 == len(sets):
            log(f"pooled training sets: {i + 1}/{len(sets)} ({sum(len(f) for f in frames):,} labelled candidates)")
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames, ignore_index=True)


WORLD_NEGATIVES_PER_YEAR = 250_000
"""A world-trained task's other countries' negatives kept per labelled year for training (:func:`world_split`)."""


def negative_sample(year: np.ndarray, positive: np.ndarray, *, per_year: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(rows kept, their weights): every positive, and in each year with more than ``per_year`` negatives a
    uniform sample of about ``per_year`` of them, each weighted 1 / r (r = ``per_year`` / the year's negatives).

    Negative down-sampling with inverse-probability weights (He et al. 2014, *Practical lessons from
    predicting clicks on ads at Facebook*, §6; Fithian & Hastie 2014): the weighted log-loss, and the
    weighted average precision early stopping reads, are unbiased estimates of the full year's, and
    each year keeps its weight in the total. A year with ``per_year`` negatives or fewer is kept whole
    (weights 1). Deterministic for a seed.
    """
    rng = np.random.default_rng(seed)
    weight = np.ones(len(year))
    keep = np.ones(len(year), dtype=bool)
    for y in np.unique(year):
        negative = np.flatnonzero((year == y) & ~positive)
        if negative.size > per_year:
            rate = per_year / negative.size
            drawn = rng.random(negative.size) < rate
            keep[negative[~drawn]] = False
            weight[negative] = 1.0 / rate
    rows = np.flatnonzero(keep)
    return rows, weight[rows]


def world_split(table: pd.DataFrame, *, size_column: str, year: int, largest: int = 150,
                panel: str = "world150", consume: bool = False, negatives_per_year: int | None = None,
                seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, pd.DataFrame]]:
    """A world-trained task's table (every country, tagged :data:`~models.tasks.POOL`) as (the bloc's rows,
    the other countries' labelled rows for training, the test panel of the ``largest`` countries by
    ``size_column`` in ``year``: their labelled rows from ``year`` on, bloc members included; a panel
    only ever tests).

    The size ranking reads year ``year`` only (the first test year: known then). With
    ``negatives_per_year``, the training rows keep every positive and about that many negatives a year,
    weighted (:func:`negative_sample`, column :data:`~models.tasks.WEIGHT`); the bloc's rows and the
    panel are never sampled, so every reported metric is computed on all their candidates. With
    ``consume``, the columns move out of ``table`` as they are split (``table`` is left without columns):
    the parts are built while the whole shrinks, so the peak is about one table instead of 1.7 (the
    15-year HS6 world's training peaked at the split). The parts are the same either way (tested).
    """
    labelled = table["relevance"].notna().to_numpy()
    in_bloc = (table[POOL] == BLOC_POOL).to_numpy()
    sizes = table.loc[table["year"] == year].groupby("country", observed=True)[size_column].max()
    chosen = sizes.sort_values(ascending=False).index[:largest]
    tested = table["country"].isin(chosen).to_numpy() & (table["year"] >= year).to_numpy() & labelled
    world = np.flatnonzero(~in_bloc & labelled)
    weights = None
    if negatives_per_year is not None:
        kept, weights = negative_sample(table["year"].to_numpy()[world], table["relevance"].to_numpy()[world] >= 1,
                                        per_year=negatives_per_year, seed=seed)
        world = world[kept]
    rows = [np.flatnonzero(in_bloc), world, np.flatnonzero(tested)]
    if not consume:
        bloc, pool, test = (table.iloc[r].reset_index(drop=True) for r in rows)
    else:
        parts: list[dict] = [{}, {}, {}]
        for column in list(table.columns):
            values = table.pop(column).array  # this column of the whole is freed once its parts are taken
            for part, r in zip(parts, rows, strict=True):
                part[column] = values.take(r)
            del values
        bloc, pool, test = (pd.DataFrame(part, copy=False) for part in parts)
    if weights is not None and (weights != 1).any():  # a world small enough to keep whole trains as before
        pool[WEIGHT] = weights
    return bloc, pool, {panel: test}
