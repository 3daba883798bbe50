"""Exceptions raised by elasticnas.

Every error a user can cause derives from :class:`ElasticNASError`; the CLI
prints its message on one line and exits with status 2.
"""

from __future__ import annotations


class ElasticNASError(Exception):
    """Base class of all errors caused by user input."""


class InvalidConfigError(ElasticNASError, ValueError):
    """A configuration does not belong to its search space."""


class UnknownNameError(ElasticNASError, KeyError):
    """A name was looked up in a registry that does not hold it."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class StorageError(ElasticNASError):
    """A study storage could not be opened, or the study is missing."""


class EvaluationError(ElasticNASError):
    """An evaluation function returned something unusable."""


class CheckpointError(ElasticNASError):
    """A checkpoint could not be loaded into a super-network."""
