"""Models: task definitions, training, evaluation against baselines, MLflow tracking."""

import features  # noqa: F401  (sets the OpenMP wait policy before LightGBM loads)
