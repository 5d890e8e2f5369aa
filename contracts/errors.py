"""The exception hierarchy of the ``contracts`` package."""


class ContractsError(Exception):
    """Base of every error raised by the ``contracts`` package."""


class ArtifactError(ContractsError):
    """A compiled artifact that is missing or malformed."""
