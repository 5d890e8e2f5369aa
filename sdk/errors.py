"""The exception hierarchy of the ``sdk`` package. Every error the SDK itself raises derives
from :class:`SdkError`; key and encoding errors from ``chain`` propagate unchanged."""

from __future__ import annotations

from enum import IntEnum
from typing import Any


class SdkError(Exception):
    """Base of every error raised by the ``sdk`` package."""


ANSWER_FAULTS = (
    ValueError,
    KeyError,
    IndexError,
    TypeError,
    AttributeError,
    OverflowError,
    RecursionError,
)
"""What decoding an answer from outside (the registry's, a node's) and reading its members
raises when it is not the answer asked for (ValueError covers bad JSON and bad UTF-8;
RecursionError, nesting deeper than the decoder goes). The clients turn each into their
typed error for a malformed answer."""


class InvalidTransactionParams(SdkError):
    """Transaction parameters that cannot become a lianxin transaction: a wrong length or
    type, a sender other than the signing account, a chain id other than the node's, or a
    field (such as an EIP-7702 authorization list) that this chain has no place for."""


class UnsignedTransaction(SdkError):
    """A transaction without a signature where a signed one is required."""


class RefusalReason(IntEnum):
    """Why the node's mempool refused a transaction: the JSON-RPC error codes -32010 to
    -32018 that the node answers ``eth_sendRawTransaction`` with."""

    BAD_ENCODING = -32010
    BAD_SIGNATURE = -32011
    WRONG_CHAIN_ID = -32012
    EXPIRED = -32013
    BLOCK_LIMIT_TOO_FAR = -32014
    OVERSIZE = -32015
    DUPLICATE_NONCE = -32016
    NOT_PERMITTED = -32017
    MEMPOOL_FULL = -32018


REFUSAL_CODES = frozenset(int(reason) for reason in RefusalReason)
"""Every JSON-RPC error code that means "refused by the mempool"."""


class TransactionRefused(SdkError):
    """The node refused to admit a transaction to its mempool. Nothing was executed.

    ``code`` is the JSON-RPC error code, ``reason`` the matching :class:`RefusalReason`,
    ``message`` and ``data`` what the node answered alongside it."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"transaction refused ({code}): {message}")
        self.code = code
        self.message = message
        self.data = data

    @property
    def reason(self) -> RefusalReason:
        """The refusal reason named by ``code``."""
        return RefusalReason(self.code)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.code, self.message, self.data))
