"""Team mode: the MLflow tracking server on PostgreSQL (:mod:`~recommender.team.server`) and its accounts
(:mod:`~recommender.team.accounts`). Never imports the outputs or the pipeline: a server holds runs, it does not score."""

PERMISSIONS = ("READ", "EDIT", "MANAGE", "DENY")
"""What ``users grant --permission`` accepts: MLflow 3's resource-level permissions (here, not in
:mod:`~recommender.team.accounts`, so the CLI lists them without importing MLflow)."""
