"""EIP-712 typed data → the 32-byte digest ``eth_signTypedData_v4`` signs: the one place the
node reaches ``eth_account``."""

from __future__ import annotations

import json
from typing import Any

from eth_account.messages import encode_typed_data
from eth_utils.crypto import keccak

from node.rpc.errors import InvalidParams

MAX_TYPED_DATA_BYTES = 64 * 1024
"""Largest typed-data document accepted (its JSON text)."""


def typed_data_digest(value: Any) -> bytes:
    """``keccak256(0x19 0x01 ‖ domainSeparator ‖ hashStruct(message))`` of an EIP-712
    document, given as an object or as its JSON text (both forms are in use); a malformed
    document raises InvalidParams."""
    if isinstance(value, str):
        if len(value) > MAX_TYPED_DATA_BYTES:
            raise InvalidParams(f"typedData: longer than {MAX_TYPED_DATA_BYTES} bytes")
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise InvalidParams(f"typedData: not JSON: {exc}") from exc
    if not isinstance(value, dict) or len(json.dumps(value)) > MAX_TYPED_DATA_BYTES:
        raise InvalidParams(f"typedData: expected an object of at most {MAX_TYPED_DATA_BYTES} B")
    try:
        signable = encode_typed_data(full_message=value)
    except Exception as exc:  # eth_account raises many types for malformed documents
        raise InvalidParams(f"typedData: {type(exc).__name__}: {exc}") from exc
    return keccak(b"\x19" + signable.version + signable.header + signable.body)
