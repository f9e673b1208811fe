"""Industrial-cooperation recommender: data bank, configuration, scoring and the CLI."""

__version__ = "0.1.0"
