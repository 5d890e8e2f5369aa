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
    document raises InvalidParams, as does a fixed-size array (``T[n]``) of another length."""
    if isinstance(value, str):
        if len(value) > MAX_TYPED_DATA_BYTES:
            raise InvalidParams(f"typedData: longer than {MAX_TYPED_DATA_BYTES} bytes")
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise InvalidParams(f"typedData: not JSON: {exc}") from exc
    if not isinstance(value, dict) or len(json.dumps(value)) > MAX_TYPED_DATA_BYTES:
        raise InvalidParams(f"typedData: expected an object of at most {MAX_TYPED_DATA_BYTES} B")
    types = value.get("types")
    if isinstance(types, dict):
        _check_fixed_arrays(types, "EIP712Domain", value.get("domain"))
        primary = value.get("primaryType")
        if isinstance(primary, str):
            _check_fixed_arrays(types, primary, value.get("message"))
    try:
        signable = encode_typed_data(full_message=value)
    except Exception as exc:  # eth_account raises many types for malformed documents
        raise InvalidParams(f"typedData: {type(exc).__name__}: {exc}") from exc
    return keccak(b"\x19" + signable.version + signable.header + signable.body)


def _check_fixed_arrays(types: dict[str, Any], type_name: str, value: Any) -> None:
    """Refuse a value of a fixed-size array type ``T[n]`` that does not hold ``n`` items,
    anywhere in the struct ``value`` of ``type_name`` (EIP-712 encodes an array as the hash
    of its items, so eth_account would sign it whatever its length). What is malformed
    otherwise is left to eth_account."""
    fields = types.get(type_name)
    if not isinstance(fields, list) or not isinstance(value, dict):
        return
    for field in fields:
        if isinstance(field, dict) and isinstance(field.get("type"), str):
            _check_value(types, field["type"], value.get(field.get("name")))


def _check_value(types: dict[str, Any], type_name: str, value: Any) -> None:
    if type_name.endswith("]") and "[" in type_name:
        cut = type_name.rindex("[")
        item_type, size = type_name[:cut], type_name[cut + 1 : -1]
        if not isinstance(value, list):
            return
        if size.isdigit() and len(value) != int(size):
            raise InvalidParams(
                f"typedData: Expected {int(size)} items for array type {type_name}, "
                f"got {len(value)} items"
            )
        for item in value:
            _check_value(types, item_type, item)
    elif type_name in types:
        _check_fixed_arrays(types, type_name, value)
