"""Building lianxin transactions and encoding them for ``eth_sendRawTransaction``.

A lianxin transaction has no per-account sequence number: replay protection is a random
32-byte ``nonce`` plus a ``block_limit``, the last height at which it may be included. The
node refuses a ``block_limit`` more than 1000 blocks above its current height; the SDK asks
for :data:`DEFAULT_BLOCK_LIMIT_WINDOW` blocks.
"""

from __future__ import annotations

import os

from chain.errors import EncodingError
from chain.primitives import (
    Address,
    Hash32,
    PublicKeyBytes,
    to_address,
    to_hash32,
    to_public_key_bytes,
)
from chain.types import Transaction
from sdk.errors import InvalidTransactionParams, UnsignedTransaction

DEFAULT_BLOCK_LIMIT_WINDOW = 500
"""How many blocks above the current height a new transaction stays valid by default."""

UNSIGNED_PUBLIC_KEY = PublicKeyBytes(b"\x04" + bytes(64))
"""Stands in for the sender's key in an unsigned transaction; signing replaces it."""


def new_nonce() -> Hash32:
    """Return a fresh replay nonce: 32 bytes from the operating system's CSPRNG."""
    return Hash32(os.urandom(32))


def block_limit_for(height: int, window: int = DEFAULT_BLOCK_LIMIT_WINDOW) -> int:
    """Return the ``block_limit`` of a transaction sent when the chain is at ``height``:
    valid for the next ``window`` blocks."""
    if height < 0 or window < 1:
        raise InvalidTransactionParams(f"height {height} and window {window} give no limit")
    return height + window


def build_transaction(
    *,
    chain_id: int,
    to: bytes | None,
    data: bytes,
    gas_limit: int,
    block_limit: int,
    value: int = 0,
    nonce: bytes | None = None,
    public_key: bytes | None = None,
) -> Transaction:
    """Return an unsigned transaction with these fields; ``to=None`` creates a contract from
    ``data``. A fresh random nonce is drawn unless ``nonce`` is given (reuse one only to
    retry the very same transaction). Sign the result with
    :meth:`sdk.account.Sm2Account.sign_transaction`.

    Raises InvalidTransactionParams for a negative number or a wrong-length byte field.
    """
    for name, number in (
        ("chain_id", chain_id),
        ("gas_limit", gas_limit),
        ("block_limit", block_limit),
        ("value", value),
    ):
        if isinstance(number, bool) or not isinstance(number, int) or number < 0:
            raise InvalidTransactionParams(f"{name} must be a non-negative integer: {number!r}")
    try:
        recipient: Address | None = None if to is None else to_address(to)
        replay_nonce = new_nonce() if nonce is None else to_hash32(nonce)
        key = UNSIGNED_PUBLIC_KEY if public_key is None else to_public_key_bytes(public_key)
    except EncodingError as exc:
        raise InvalidTransactionParams(str(exc)) from exc
    return Transaction(
        chain_id=chain_id,
        nonce=replay_nonce,
        block_limit=block_limit,
        to=recipient,
        value=value,
        data=bytes(data),
        gas_limit=gas_limit,
        public_key=key,
    )


def encode_raw(tx: Transaction) -> str:
    """Return the ``0x``-hex canonical encoding of a signed transaction, the parameter of
    ``eth_sendRawTransaction``. Raises UnsignedTransaction if ``tx`` carries no signature."""
    if not tx.signature:
        raise UnsignedTransaction("sign the transaction before encoding it for the node")
    return "0x" + tx.encode().hex()
