"""Errors of the features library. The application maps them to a message and exit code 2."""

from __future__ import annotations


class FeatureError(ValueError):
    """Input a feature function cannot use: a missing column, an unknown product level."""
