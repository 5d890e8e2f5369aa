"""The exceptions of the public-credit domain: one base, specific subclasses."""

from __future__ import annotations


class CreditError(Exception):
    """Base of every error raised by :mod:`credit`."""


class RuleSetError(CreditError):
    """A rule set or measures catalogue file that cannot be used. ``reason`` says why."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class ImportFileError(CreditError):
    """A file that cannot be read as a 双公示 table at all (not a row problem: those go in
    the validation report). ``reason`` is one of ``encoding``, ``bad_csv``,
    ``unknown_layout`` and ``not_xlsx``."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class RecordMismatch(CreditError):
    """Two versions of a record compared that do not share a natural key or a kind."""
