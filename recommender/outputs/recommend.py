"""Recommendations: every candidate of a year ranked by the task's champion, with reasons and names."""

from __future__ import annotations

import pandas as pd

from models.engine import Engine
from models.tasks import Task, as_task
from recommender.config import Config
from recommender.errors import RecommenderError
from recommender.pipeline import (
    add_names,
    explain,
    open_bank,
    product_names,
    rank,
    score_candidates,
)


def recommend(cfg: Config, task: Task | str, *, year: int | None = None, countries: list[str] | None = None,
              top: int | None = None, model_uri: str | None = None, engine: Engine | None = None,
              features: list[str] | None = None) -> tuple[pd.DataFrame, str]:
    """Rank all candidates of ``year`` (default the bank's last) with the champion model.

    ``countries`` keeps import-substitution rows whose importer is listed, and joint-project rows
    with either partner listed. Columns: ``year, importer, supplier, product, score, probability, rank`` or
    ``year, partner_a, partner_b, product, score, probability, rank``, then ``reasons`` and names.
    ``features``: feature columns to append after the names (the brief's chart reads density and PCI).
    Returns the table and the model's version.
    """
    task = as_task(task)
    scored = score_candidates(cfg, task, year=year, model_uri=model_uri, engine=engine)
    spec, table = scored.model.task, scored.rows
    if countries:
        wanted = {c.strip().upper() for c in countries}
        unknown = wanted - set(cfg.bloc.members)
        if unknown:
            raise RecommenderError(f"--country {sorted(unknown)} not in bloc {cfg.bloc.name} ({', '.join(cfg.bloc.members)})")
        table = table[spec.concerns(table, wanted)]
    ranked = rank(table, spec, top=top)
    ranked["reasons"] = explain(scored.model.booster, ranked, scored.model.features, spec, scored.sectors) if len(ranked) else []
    columns = [*spec.output_keys, "score", "probability", "rank", *[c for c in spec.info_columns if c in ranked], "reasons"]
    out = add_names(ranked[columns], spec, scored.classification,
                    product_names(open_bank(cfg)))
    if features:
        out = pd.concat([out, ranked[features].reset_index(drop=True)], axis=1)
    return out, scored.version
