"""Feature pipelines: pure functions from DataFrame to DataFrame, one registry of features."""
