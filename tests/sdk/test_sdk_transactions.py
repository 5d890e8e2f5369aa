"""Building, signing and encoding transactions: fields land where they belong, the SM2
signature verifies with chain.crypto, and the raw form decodes with chain.types."""

from __future__ import annotations

import dataclasses

import pytest

from chain.crypto import PublicKey
from chain.errors import InvalidSignature
from chain.types import Transaction
from chain.validation import BadSignature, verify_transaction_signature
from sdk.account import Sm2Account
from sdk.errors import InvalidTransactionParams, UnsignedTransaction
from sdk.transactions import (
    DEFAULT_BLOCK_LIMIT_WINDOW,
    UNSIGNED_PUBLIC_KEY,
    block_limit_for,
    build_transaction,
    encode_raw,
)

RECIPIENT = bytes(range(20))
CALL_DATA = bytes.fromhex("c2b12a73") + bytes(32)


def call(**overrides: object) -> Transaction:
    fields: dict[str, object] = {
        "chain_id": 7,
        "to": RECIPIENT,
        "data": CALL_DATA,
        "gas_limit": 90_000,
        "block_limit": 1_500,
    }
    fields.update(overrides)
    return build_transaction(**fields)  # type: ignore[arg-type]


def test_build_sets_every_field() -> None:
    tx = call(value=3, nonce=b"\x01" * 32)
    assert (tx.chain_id, tx.to, tx.data, tx.gas_limit, tx.block_limit, tx.value) == (
        7,
        RECIPIENT,
        CALL_DATA,
        90_000,
        1_500,
        3,
    )
    assert tx.nonce == b"\x01" * 32
    assert tx.public_key == UNSIGNED_PUBLIC_KEY and tx.signature == b""


def test_build_draws_a_fresh_random_nonce() -> None:
    first, second = call(), call()
    assert len(first.nonce) == 32
    assert first.nonce != second.nonce


def test_build_without_recipient_creates_a_contract() -> None:
    assert call(to=None).to is None


@pytest.mark.parametrize(
    "overrides",
    [
        {"to": bytes(19)},
        {"nonce": bytes(31)},
        {"gas_limit": -1},
        {"value": -5},
        {"chain_id": True},
        {"public_key": b"\x02" + bytes(64)},
    ],
)
def test_build_refuses_bad_fields(overrides: dict[str, object]) -> None:
    with pytest.raises(InvalidTransactionParams):
        call(**overrides)


def test_block_limit_is_height_plus_window() -> None:
    assert block_limit_for(120) == 120 + DEFAULT_BLOCK_LIMIT_WINDOW
    assert block_limit_for(120, window=10) == 130
    with pytest.raises(InvalidTransactionParams):
        block_limit_for(120, window=0)


def test_signature_verifies_with_chain_crypto(account: Sm2Account) -> None:
    signed = account.sign_transaction(call())
    assert signed.public_key == account.public_key_bytes
    PublicKey.from_bytes(signed.public_key).verify(signed.signature, signed.sign_bytes())
    verify_transaction_signature(signed)


def test_signature_covers_the_fields(account: Sm2Account) -> None:
    signed = account.sign_transaction(call())
    tampered = dataclasses.replace(signed, gas_limit=signed.gas_limit + 1)
    with pytest.raises(InvalidSignature):
        PublicKey.from_bytes(tampered.public_key).verify(tampered.signature, tampered.sign_bytes())
    with pytest.raises(BadSignature):
        verify_transaction_signature(tampered)


def test_raw_encoding_decodes_to_the_signed_transaction(account: Sm2Account) -> None:
    signed = account.sign_transaction(call(to=None, value=9))
    raw = encode_raw(signed)
    assert raw.startswith("0x")
    assert Transaction.decode(bytes.fromhex(raw[2:])) == signed


def test_unsigned_transaction_is_not_encoded() -> None:
    with pytest.raises(UnsignedTransaction):
        encode_raw(call())
