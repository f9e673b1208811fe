"""From the data bank to scores: the bank's inputs, the task tables and their cache, training, scoring, reasons.

Public names (the outputs, the CLI and notebooks import these):

* :mod:`~recommender.pipeline.inputs` — ``open_bank``, ``trade_year``, ``member_and_year``, ``product_names`` …
* :mod:`~recommender.pipeline.datasets` — ``YearBuilder``, ``task_table``
* :mod:`~recommender.pipeline.feature_cache` — ``FeatureCache``, ``dataset_key``: one file per year, keyed by its inputs' content
* :mod:`~recommender.pipeline.training` — ``train_task``
* :mod:`~recommender.pipeline.scoring` — ``load_model``, ``TrainedModel``, ``YearScorer``, ``score_candidates``, ``rank``
* :mod:`~recommender.pipeline.explain` — ``explain``, ``add_names``
* :mod:`~recommender.pipeline.matching` — ``ProductMatcher``: products written as codes at any level, sections, names
"""

from recommender.pipeline.datasets import (
    FeatureCache,
    StoredTable,
    YearBuilder,
    dataset_key,
    task_table,
    year_chunks,
)
from recommender.pipeline.explain import add_names, explain
from recommender.pipeline.inputs import (
    bloc_member,
    check_bloc,
    country_code,
    member_and_year,
    open_bank,
    product_codes,
    product_names,
    resolve_level,
    trade_table,
    trade_year,
)
from recommender.pipeline.matching import ProductMatch, ProductMatcher, product_set
from recommender.pipeline.scoring import (
    Scored,
    TrainedModel,
    YearScorer,
    load_model,
    rank,
    score_candidates,
    trained_options,
)
from recommender.pipeline.training import TrainOutcome, pooled_candidates, train_task

__all__ = ["FeatureCache", "Scored", "StoredTable", "TrainOutcome", "TrainedModel", "YearBuilder", "YearScorer", "add_names",
           "check_bloc", "dataset_key", "explain", "load_model", "member_and_year", "open_bank", "pooled_candidates", "ProductMatch", "ProductMatcher", "product_set", "bloc_member", "country_code",
           "product_codes", "product_names", "rank", "resolve_level", "score_candidates", "task_table", "trade_year",
           "train_task", "trained_options", "year_chunks", "trade_table"]
