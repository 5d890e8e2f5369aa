"""Transaction admission: each rule raises its own error with its numbers, a valid signed
transaction passes, and no damaged transaction ever does."""

from __future__ import annotations

import dataclasses
import pickle
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.crypto import PrivateKey
from chain.crypto.sm3 import sm3
from chain.errors import EncodingError, InvalidKey, InvalidSignature, ValidationError
from chain.execution import intrinsic_gas
from chain.primitives import Address, Hash32, PublicKeyBytes
from chain.types import Transaction
from chain.validation import (
    MAX_INIT_CODE_SIZE,
    BadEncoding,
    BadSignature,
    BlockLimitTooFar,
    DuplicateNonce,
    GasLimitOutOfRange,
    InvalidTransaction,
    OversizeData,
    OversizeInitCode,
    OversizeTransaction,
    TransactionExpired,
    TxRules,
    WrongChainId,
    decode_transaction,
    sign_transaction,
    validate_block_transactions,
    validate_transaction,
)

RULES = TxRules(chain_id=7, max_block_limit_window=100, max_data_size=1024, max_tx_size=2048)
HEIGHT = 500
KEY = PrivateKey.generate()
OTHER_KEY = PrivateKey.generate()


def never_seen(nonce: Hash32) -> bool:
    return False


def unsigned_tx(nonce_byte: int = 1, **changes: object) -> Transaction:
    tx = Transaction(
        chain_id=RULES.chain_id,
        nonce=Hash32(bytes([nonce_byte]) * 32),
        block_limit=HEIGHT + 10,
        to=Address(b"\x42" * 20),
        value=0,
        data=b"\xa9\x05\x9c\xbb" + b"\x00" * 64,
        gas_limit=1_000_000,
        public_key=PublicKeyBytes(b"\x04" + b"\x00" * 64),
    )
    return dataclasses.replace(tx, **changes)  # type: ignore[arg-type]


def signed_tx(nonce_byte: int = 1, key: PrivateKey = KEY, **changes: object) -> Transaction:
    return sign_transaction(unsigned_tx(nonce_byte, **changes), key)


def validate(tx: Transaction, nonce_seen: Callable[[Hash32], bool] = never_seen) -> None:
    validate_transaction(tx, RULES, height=HEIGHT, nonce_seen=nonce_seen)


# --- the valid case --------------------------------------------------------------------------


def test_valid_transaction_passes() -> None:
    tx = signed_tx()
    assert tx.public_key == KEY.public_key.to_bytes()
    validate(tx)
    assert decode_transaction(tx.encode(), RULES) == tx


def test_contract_creation_passes() -> None:
    validate(signed_tx(to=None))


@pytest.mark.parametrize("block_limit", [HEIGHT, HEIGHT + RULES.max_block_limit_window])
def test_block_limit_window_is_inclusive(block_limit: int) -> None:
    validate(signed_tx(block_limit=block_limit))


def test_data_of_exactly_the_limit_passes() -> None:
    validate(signed_tx(data=b"\x01" * RULES.max_data_size))


def test_sign_transaction_replaces_key_and_signature() -> None:
    tx = signed_tx()
    resigned = sign_transaction(tx, OTHER_KEY)
    assert resigned.public_key == OTHER_KEY.public_key.to_bytes()
    assert resigned.signature != tx.signature
    assert dataclasses.replace(resigned, public_key=tx.public_key, signature=b"") == (
        dataclasses.replace(tx, signature=b"")
    )
    validate(resigned)


# --- one error per rule, with its numbers ----------------------------------------------------


def test_wrong_chain_id() -> None:
    tx = signed_tx(chain_id=8)
    with pytest.raises(WrongChainId) as caught:
        validate(tx)
    assert (caught.value.tx_hash, caught.value.chain_id, caught.value.expected) == (tx.hash, 8, 7)


def test_expired() -> None:
    tx = signed_tx(block_limit=HEIGHT - 1)
    with pytest.raises(TransactionExpired) as caught:
        validate(tx)
    error = caught.value
    assert (error.tx_hash, error.block_limit, error.height) == (tx.hash, HEIGHT - 1, HEIGHT)


def test_block_limit_too_far() -> None:
    limit = HEIGHT + RULES.max_block_limit_window + 1
    tx = signed_tx(block_limit=limit)
    with pytest.raises(BlockLimitTooFar) as caught:
        validate(tx)
    error = caught.value
    assert (error.tx_hash, error.block_limit, error.height, error.window) == (
        tx.hash,
        limit,
        HEIGHT,
        RULES.max_block_limit_window,
    )


def test_oversize_data() -> None:
    tx = signed_tx(data=b"\x01" * (RULES.max_data_size + 1))
    with pytest.raises(OversizeData) as caught:
        validate(tx)
    error = caught.value
    assert (error.tx_hash, error.size, error.limit) == (tx.hash, RULES.max_data_size + 1, 1024)


@pytest.mark.parametrize("size", [MAX_INIT_CODE_SIZE, MAX_INIT_CODE_SIZE + 1])
def test_init_code_above_eip_3860s_limit_is_refused(size: int) -> None:
    # The EVM refuses longer init code before running it, so no block could include it.
    rules = dataclasses.replace(RULES, max_data_size=64 * 1024, max_tx_size=80 * 1024)
    creation = signed_tx(to=None, data=b"\x00" * size, gas_limit=10_000_000)
    call = signed_tx(nonce_byte=2, data=b"\x00" * size, gas_limit=10_000_000)
    validate_transaction(call, rules, height=HEIGHT, nonce_seen=never_seen)
    if size == MAX_INIT_CODE_SIZE:
        validate_transaction(creation, rules, height=HEIGHT, nonce_seen=never_seen)
        return
    with pytest.raises(OversizeInitCode) as caught:
        validate_transaction(creation, rules, height=HEIGHT, nonce_seen=never_seen)
    error = caught.value
    assert isinstance(error, OversizeData)  # answered as any oversize data over JSON-RPC
    assert (error.tx_hash, error.size, error.limit) == (creation.hash, size, 49_152)


def test_oversize_transaction_is_refused_before_decoding() -> None:
    raw = b"\xff" * (RULES.max_tx_size + 1)  # not even RLP: size comes first
    with pytest.raises(OversizeTransaction) as caught:
        decode_transaction(raw, RULES)
    error = caught.value
    assert (error.tx_hash, error.size, error.limit) == (sm3(raw), len(raw), RULES.max_tx_size)


def test_transaction_of_exactly_the_size_limit_decodes() -> None:
    tx = signed_tx(data=b"")
    rules = dataclasses.replace(RULES, max_tx_size=len(tx.encode()))
    assert decode_transaction(tx.encode(), rules) == tx
    with pytest.raises(OversizeTransaction):
        decode_transaction(
            tx.encode(), dataclasses.replace(rules, max_tx_size=rules.max_tx_size - 1)
        )


@pytest.mark.parametrize(
    "raw",
    [b"", b"\x80", b"\xc0", b"\xff\xff", signed_tx().encode() + b"\x00", signed_tx().encode()[:-1]],
)
def test_bad_encoding(raw: bytes) -> None:
    with pytest.raises(BadEncoding) as caught:
        decode_transaction(raw, RULES)
    assert caught.value.tx_hash == sm3(raw)
    assert isinstance(caught.value.__cause__, EncodingError)
    assert caught.value.reason == str(caught.value.__cause__)


def _nested_empty_lists(size: int) -> bytes:
    """Canonical RLP of ``[[[...[]...]]]``, nested as deep as ``size`` bytes allow."""
    raw = b"\xc0"
    while len(raw) < size - 3:
        length = len(raw)
        if length < 56:
            header = bytes([0xC0 + length])
        else:
            length_bytes = length.to_bytes((length.bit_length() + 7) // 8, "big")
            header = bytes([0xF7 + len(length_bytes)]) + length_bytes
        raw = header + raw
    return raw


def test_deeply_nested_lists_are_bad_encoding() -> None:
    # Tens of thousands of levels fit the default size limit; the recursive RLP decoder
    # must fail with an encoding error, not exhaust the stack.
    rules = TxRules(chain_id=RULES.chain_id)
    raw = _nested_empty_lists(rules.max_tx_size)
    with pytest.raises(BadEncoding) as caught:
        decode_transaction(raw, rules)
    assert caught.value.tx_hash == sm3(raw)


def test_nonce_committed_within_the_window() -> None:
    tx = signed_tx()
    with pytest.raises(DuplicateNonce) as caught:
        validate(tx, nonce_seen=lambda nonce: nonce == tx.nonce)
    error = caught.value
    assert (error.tx_hash, error.nonce, error.committed) == (tx.hash, tx.nonce, True)
    validate(tx, nonce_seen=lambda nonce: nonce != tx.nonce)


def test_signature_by_another_key() -> None:
    tx = dataclasses.replace(signed_tx(), public_key=OTHER_KEY.public_key.to_bytes())
    with pytest.raises(BadSignature) as caught:
        validate(tx)
    assert caught.value.tx_hash == tx.hash
    assert isinstance(caught.value.__cause__, InvalidSignature)


def test_unsigned_transaction() -> None:
    tx = dataclasses.replace(signed_tx(), signature=b"")
    with pytest.raises(BadSignature):
        validate(tx)


def test_public_key_off_the_curve() -> None:
    tx = dataclasses.replace(signed_tx(), public_key=PublicKeyBytes(b"\x04" + b"\x01" * 64))
    with pytest.raises(BadSignature) as caught:
        validate(tx)
    assert isinstance(caught.value.__cause__, InvalidKey)


def test_signature_does_not_carry_over_to_another_chain() -> None:
    tx = signed_tx()
    other_rules = dataclasses.replace(RULES, chain_id=8)
    moved = dataclasses.replace(tx, chain_id=8)
    with pytest.raises(BadSignature):
        validate_transaction(moved, other_rules, height=HEIGHT, nonce_seen=never_seen)


def test_gas_limit_below_intrinsic_gas() -> None:
    minimum = intrinsic_gas(unsigned_tx())
    validate(signed_tx(gas_limit=minimum))
    tx = signed_tx(gas_limit=minimum - 1)
    with pytest.raises(GasLimitOutOfRange) as caught:
        validate(tx)
    assert (caught.value.tx_hash, caught.value.gas_limit) == (tx.hash, minimum - 1)
    assert (caught.value.minimum, caught.value.maximum) == (minimum, None)


def test_gas_limit_above_the_block_gas_limit() -> None:
    rules = dataclasses.replace(RULES, block_gas_limit=2_000_000)
    validate_transaction(
        signed_tx(gas_limit=2_000_000), rules, height=HEIGHT, nonce_seen=never_seen
    )
    tx = signed_tx(gas_limit=2_000_001)
    with pytest.raises(GasLimitOutOfRange) as caught:
        validate_transaction(tx, rules, height=HEIGHT, nonce_seen=never_seen)
    assert caught.value.gas_limit == 2_000_001
    assert (caught.value.minimum, caught.value.maximum) == (intrinsic_gas(tx), 2_000_000)
    with pytest.raises(GasLimitOutOfRange):
        validate_block_transactions([signed_tx(), tx], rules, HEIGHT, never_seen)
    # Without a block gas limit only the intrinsic gas bounds it.
    validate(tx)


def test_cheap_checks_come_before_the_signature() -> None:
    tx = dataclasses.replace(signed_tx(chain_id=8), signature=b"")
    with pytest.raises(WrongChainId):
        validate(tx)
    tx = dataclasses.replace(signed_tx(), signature=b"")
    with pytest.raises(DuplicateNonce):
        validate(tx, nonce_seen=lambda nonce: True)
    tx = dataclasses.replace(signed_tx(gas_limit=0), signature=b"")
    with pytest.raises(GasLimitOutOfRange):
        validate(tx)


def test_errors_are_validation_errors_and_pickle_with_their_numbers() -> None:
    tx = signed_tx(block_limit=HEIGHT - 3)
    with pytest.raises(ValidationError) as caught:
        validate(tx)
    error = caught.value
    assert isinstance(error, InvalidTransaction)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is TransactionExpired
    assert (copy.tx_hash, copy.block_limit, copy.height) == (tx.hash, HEIGHT - 3, HEIGHT)
    assert str(copy) == str(error)
    gas_error = GasLimitOutOfRange(tx_hash=tx.hash, gas_limit=5, minimum=21_000, maximum=None)
    gas_copy = pickle.loads(pickle.dumps(gas_error))
    assert type(gas_copy) is GasLimitOutOfRange
    assert (gas_copy.gas_limit, gas_copy.minimum, gas_copy.maximum) == (5, 21_000, None)


# --- blocks ----------------------------------------------------------------------------------


def test_block_of_valid_transactions_passes() -> None:
    txs = [signed_tx(nonce_byte=n) for n in range(1, 6)]
    validate_block_transactions(txs, RULES, HEIGHT, never_seen)
    validate_block_transactions([], RULES, HEIGHT, never_seen)


def test_nonce_repeated_inside_a_block() -> None:
    first = signed_tx(nonce_byte=3)
    second = signed_tx(nonce_byte=3, value=5)
    with pytest.raises(DuplicateNonce) as caught:
        validate_block_transactions([signed_tx(1), first, second], RULES, HEIGHT, never_seen)
    error = caught.value
    assert (error.tx_hash, error.nonce, error.committed) == (second.hash, second.nonce, False)


def test_block_reports_the_first_failing_transaction() -> None:
    bad = signed_tx(nonce_byte=2, chain_id=9)
    txs = [signed_tx(nonce_byte=1), bad, signed_tx(nonce_byte=3, block_limit=0)]
    with pytest.raises(WrongChainId) as caught:
        validate_block_transactions(txs, RULES, HEIGHT, never_seen)
    assert caught.value.tx_hash == bad.hash


def test_block_checks_committed_nonces() -> None:
    tx = signed_tx(nonce_byte=4)
    with pytest.raises(DuplicateNonce) as caught:
        validate_block_transactions([tx], RULES, HEIGHT, lambda nonce: nonce == tx.nonce)
    assert caught.value.committed


# --- properties ------------------------------------------------------------------------------


@settings(max_examples=500)
@given(st.binary(max_size=RULES.max_tx_size + 64))
def test_random_bytes_only_raise_bad_encoding_or_oversize(raw: bytes) -> None:
    try:
        tx = decode_transaction(raw, RULES)
    except (BadEncoding, OversizeTransaction):
        return
    assert tx.encode() == raw


VALID_RAW = signed_tx(nonce_byte=9).encode()


@settings(max_examples=500)
@given(
    st.integers(min_value=0, max_value=len(VALID_RAW) - 1),
    st.integers(min_value=1, max_value=255),
)
def test_no_single_byte_change_passes_validation(position: int, mask: int) -> None:
    raw = bytearray(VALID_RAW)
    raw[position] ^= mask
    with pytest.raises(InvalidTransaction):
        validate(decode_transaction(bytes(raw), RULES))


def test_every_single_bit_flip_is_refused() -> None:
    for bit in range(len(VALID_RAW) * 8):
        raw = bytearray(VALID_RAW)
        raw[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(InvalidTransaction):
            validate(decode_transaction(bytes(raw), RULES))
