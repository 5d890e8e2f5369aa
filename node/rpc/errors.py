"""JSON-RPC error codes: the spec's reserved codes, and one code per mempool refusal.

| code | meaning |
| --- | --- |
| -32700 | parse error: the body is not JSON |
| -32600 | invalid request: not a JSON-RPC 2.0 request, batch too long, too large, too deep |
| -32601 | method not found |
| -32602 | invalid params |
| -32603 | internal error (logged by the server) |
| 3 | execution reverted (eth_call / eth_estimateGas); ``data`` holds the revert data (as geth) |
| -32001 | resource not found (unknown block, filter, ...) |
| -32005 | limit exceeded (logs, block range, filters, subscriptions, WebSocket connections) |
| -32006 | rate limited: too many expensive requests; ``data.retryAfterMs`` says when to retry |
| -32007 | execution timeout: eth_call / eth_estimateGas stopped at ``call_timeout_ms`` |
| -32008 | forbidden: the request's ``Host`` or ``Origin`` is not allowed (answered with HTTP 403) |
| -32010 | transaction refused: bad encoding |
| -32011 | transaction refused: bad signature |
| -32012 | transaction refused: wrong chain id |
| -32013 | transaction refused: expired (block_limit below the next height) |
| -32014 | transaction refused: block_limit too far ahead |
| -32015 | transaction refused: oversize data or transaction |
| -32016 | transaction refused: duplicate replay nonce |
| -32017 | transaction refused: sender not permitted |
| -32018 | transaction refused: mempool full |
| -32019 | transaction refused: gas limit below intrinsic gas or above the block gas limit |
| -32020 | dev chains only: the node holds no accounts, or needs a single-validator dev chain |
| -32021 | the node holds no key for this ``from`` account |
| -32022 | the pool dropped a transaction the node signed before a block included it |
| -32023 | evm_revert refused: the ledger may rewind only a single-validator dev chain |
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from chain.validation import (
    BadEncoding,
    BadSignature,
    BlockLimitTooFar,
    DuplicateNonce,
    GasLimitOutOfRange,
    OversizeData,
    OversizeTransaction,
    TransactionExpired,
    WrongChainId,
)
from node.mempool import MempoolFull, NotPermitted


class ErrorCode(IntEnum):
    """Every error code the node's JSON-RPC server answers with."""

    PARSE_ERROR = -32700
    INVALID_REQUEST = -32600
    METHOD_NOT_FOUND = -32601
    INVALID_PARAMS = -32602
    INTERNAL_ERROR = -32603
    EXECUTION_REVERTED = 3
    NOT_FOUND = -32001
    LIMIT_EXCEEDED = -32005
    RATE_LIMITED = -32006
    EXECUTION_TIMEOUT = -32007
    FORBIDDEN = -32008
    DEV_ONLY = -32020
    UNKNOWN_ACCOUNT = -32021
    TRANSACTION_DROPPED = -32022
    REVERT_REFUSED = -32023
    TX_BAD_ENCODING = -32010
    TX_BAD_SIGNATURE = -32011
    TX_WRONG_CHAIN_ID = -32012
    TX_EXPIRED = -32013
    TX_BLOCK_LIMIT_TOO_FAR = -32014
    TX_OVERSIZE = -32015
    TX_DUPLICATE = -32016
    TX_NOT_PERMITTED = -32017
    TX_MEMPOOL_FULL = -32018
    TX_BAD_GAS_LIMIT = -32019
    # eth_simulateV1's refusals of a whole simulation (the execution-apis codes).
    SIMULATE_NONCE_TOO_LOW = -38010
    SIMULATE_NONCE_TOO_HIGH = -38011
    SIMULATE_INTRINSIC_GAS = -38013
    SIMULATE_INSUFFICIENT_FUNDS = -38014
    SIMULATE_BLOCK_GAS_LIMIT = -38015
    SIMULATE_BLOCK_NUMBER = -38020
    SIMULATE_BLOCK_TIMESTAMP = -38021
    SIMULATE_INIT_CODE_SIZE = -38025
    SIMULATE_CLIENT_LIMIT = -38026


class RpcError(Exception):
    """An error answered to the client as a JSON-RPC error object."""

    def __init__(self, code: ErrorCode, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_json(self) -> dict[str, Any]:
        """The JSON-RPC ``error`` member."""
        error: dict[str, Any] = {"code": int(self.code), "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


class InvalidParams(RpcError):
    """Parameters of the wrong type, shape or range."""

    def __init__(self, message: str, data: Any = None) -> None:
        super().__init__(ErrorCode.INVALID_PARAMS, message, data)


class NotFound(RpcError):
    """A block, filter or other object named by the request does not exist."""

    def __init__(self, message: str, data: Any = None) -> None:
        super().__init__(ErrorCode.NOT_FOUND, message, data)


class LimitExceeded(RpcError):
    """A request that would return or scan more than the configured limits allow."""

    def __init__(self, message: str, data: Any = None) -> None:
        super().__init__(ErrorCode.LIMIT_EXCEEDED, message, data)


def error_response(request_id: Any, error: RpcError) -> dict[str, Any]:
    """A complete JSON-RPC error response object."""
    return {"jsonrpc": "2.0", "id": request_id, "error": error.to_json()}


REFUSAL_CODES: dict[type[Exception], ErrorCode] = {
    BadEncoding: ErrorCode.TX_BAD_ENCODING,
    BadSignature: ErrorCode.TX_BAD_SIGNATURE,
    WrongChainId: ErrorCode.TX_WRONG_CHAIN_ID,
    TransactionExpired: ErrorCode.TX_EXPIRED,
    BlockLimitTooFar: ErrorCode.TX_BLOCK_LIMIT_TOO_FAR,
    OversizeData: ErrorCode.TX_OVERSIZE,
    OversizeTransaction: ErrorCode.TX_OVERSIZE,
    DuplicateNonce: ErrorCode.TX_DUPLICATE,
    NotPermitted: ErrorCode.TX_NOT_PERMITTED,
    MempoolFull: ErrorCode.TX_MEMPOOL_FULL,
    GasLimitOutOfRange: ErrorCode.TX_BAD_GAS_LIMIT,
}
"""Each transaction refusal and the code it is answered with."""


def _json_value(value: object) -> object:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, bool | str) or value is None:
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**53 else hex(value)
    return str(value)


def refusal_error(error: Exception) -> RpcError | None:
    """The RpcError for a transaction refusal, with the refusal's fields in ``data``
    (``refusal`` is the class name of the refusal); ``None`` if ``error`` is not a refusal."""
    for cls in type(error).__mro__:
        code = REFUSAL_CODES.get(cls)
        if code is not None:
            details: dict[str, object] = {"refusal": type(error).__name__}
            for name, value in vars(error).items():
                if not name.startswith("_"):
                    details[_camel(name)] = _json_value(value)
            return RpcError(code, str(error), details)
    return None


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
