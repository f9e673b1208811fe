"""Recommendations: every candidate of a year ranked by the task's champion, with reasons and names."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from models.engine import Engine
from models.tasks import Task, as_task
from recommender.config import Config
from recommender.pipeline import (
    add_names,
    bloc_member,
    explain,
    open_bank,
    product_names,
    product_set,
    rank,
    score_candidates,
)


def recommend(cfg: Config, task: Task | str, *, year: int | None = None, countries: list[str] | None = None,
              products: list[str] | None = None, top: int | None = None, model_uri: str | None = None, engine: Engine | None = None,
              features: list[str] | None = None, log: Callable[[str], None] | None = None) -> tuple[pd.DataFrame, str]:
    """Rank all candidates of ``year`` (default the bank's last) with the champion model.

    ``countries`` (ISO3 codes or names) keeps import-substitution rows whose importer is listed, joint-project
    rows with either partner listed, diversification rows of the listed countries; ``products`` (HS codes at any
    level, sections or names; a coarser code or a section stands for the bank's codes under it) keeps those products. Columns: ``year, importer, supplier, product, score, probability, rank`` or
    ``year, partner_a, partner_b, product, score, probability, rank``, then ``reasons`` and names.
    ``features``: feature columns to append after the names (the brief's chart reads density and PCI).
    ``log(stage)`` is told each stage (features and scores, reasons). Returns the table and the model's version.
    """
    log = log or (lambda _: None)
    task = as_task(task)
    wanted = {bloc_member(cfg, c) for c in countries} if countries else None
    chosen = product_set(open_bank(cfg), products, log=log) if products else None
    log(f"features and scores of every {task.name} candidate")
    scored = score_candidates(cfg, task, year=year, model_uri=model_uri, engine=engine)
    spec, table = scored.model.task, scored.rows
    if wanted:
        table = table[spec.concerns(table, wanted)]
    if chosen is not None:
        table = table[table["product"].isin(chosen)]
    ranked = rank(table, spec, top=top)
    log(f"reasons for {len(ranked):,} rows")
    ranked["reasons"] = explain(scored.model.booster, ranked, scored.model.features, spec, scored.sectors) if len(ranked) else []
    columns = [*spec.output_keys, "score", "probability", "rank", *[c for c in spec.info_columns if c in ranked], "reasons"]
    out = add_names(ranked[columns], spec, scored.classification,
                    product_names(open_bank(cfg)))
    if features:
        out = pd.concat([out, ranked[features].reset_index(drop=True)], axis=1)
    return out, scored.version
