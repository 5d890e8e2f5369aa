"""Typed errors of the consensus package; all derive from :class:`chain.errors.ChainError`."""

from __future__ import annotations

from chain.errors import ChainError


class ConsensusError(ChainError):
    """Base of every error raised by :mod:`chain.consensus`."""


class InvalidMessage(ConsensusError):
    """A proposal or vote that must not enter the state machine. Subclasses say why."""


class UnknownValidator(InvalidMessage):
    """A message signed in the name of an address that is not in the validator set."""


class WrongHeight(InvalidMessage):
    """A message for a height other than the one being decided."""


class BadMessageSignature(InvalidMessage):
    """A message whose signature does not verify under its author's public key."""


class BlockHashMismatch(InvalidMessage):
    """A proposal whose block bytes do not hash to the block hash it carries."""


class InvalidEvent(ConsensusError):
    """An event the driver must never feed, such as starting a height below the current one."""
