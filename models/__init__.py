"""Models: task definitions, training, evaluation against baselines, MLflow tracking."""
