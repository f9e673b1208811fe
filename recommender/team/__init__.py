"""Team mode: the MLflow tracking server on PostgreSQL (:mod:`~recommender.team.server`) and its accounts
(:mod:`~recommender.team.accounts`). Never imports the outputs or the pipeline: a server holds runs, it does not score."""
