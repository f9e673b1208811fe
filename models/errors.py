"""Errors of the models library. The application maps them to a message and exit code 2."""

from __future__ import annotations


class ModelError(ValueError):
    """A model-side problem a user can fix: bad task options, too few years, an unknown model."""


class UnsafeModelError(ModelError):
    """A model URI or artifact that the project refuses to load (it could run foreign code)."""
