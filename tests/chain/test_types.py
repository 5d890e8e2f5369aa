"""Ledger types: one canonical encoding each. ``decode(encode(x)) == x`` and every other byte
string is refused with EncodingError."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chain import encoding as enc
from chain.crypto.sm3 import sm3
from chain.errors import EncodingError
from chain.primitives import Address, Hash32, PublicKeyBytes
from chain.types import (
    MAX_SIGNATURE_SIZE,
    Block,
    CommitCertificate,
    CommitSignature,
    Header,
    Log,
    Receipt,
    Transaction,
)
from tests.chain import strategies as ls

LedgerType = type[
    Log | Transaction | Receipt | CommitSignature | CommitCertificate | Header | Block
]

STRATEGIES: dict[LedgerType, st.SearchStrategy[Any]] = {
    Log: ls.logs(),
    Transaction: ls.transactions(),
    Receipt: ls.receipts(),
    CommitSignature: ls.commit_signatures(),
    CommitCertificate: ls.commit_certificates(),
    Header: ls.headers(),
    Block: ls.blocks(),
}

# The kind of each top-level field of each type's RLP list, by position.
SCHEMA: dict[LedgerType, tuple[str, ...]] = {
    Log: ("address", "topics", "bytes"),
    Transaction: (
        "int",
        "hash",
        "int",
        "optional_address",
        "int",
        "bytes",
        "int",
        "public_key",
        "signature",
    ),
    Receipt: ("hash", "int", "int", "optional_address", "list", "bytes"),
    CommitSignature: ("address", "signature"),
    CommitCertificate: ("int", "int", "hash", "list"),
    Header: ("hash", "int", "int", "address", "hash", "hash", "hash", "hash", "hash"),
    Block: ("list", "list", "list"),
}

# Replacements of a field that are the wrong width for its kind.
WRONG_WIDTHS: dict[str, tuple[enc.RLPItem, ...]] = {
    "address": (b"\x11" * 19, b"\x11" * 21),
    "optional_address": (b"\x11" * 19, b"\x11" * 21, b"\x11"),
    "hash": (b"\x22" * 31, b"\x22" * 33),
    "topics": ([b"\x22" * 31], [b"\x22" * 33]),
    "public_key": (b"\x04" * 64, b"\x04" * 66, b"\x04"),
    "signature": (b"\x30" * (MAX_SIGNATURE_SIZE + 1),),
}

TYPES = list(SCHEMA)


def decode(cls: LedgerType, raw: bytes) -> Any:
    """Decode ``raw`` as ``cls`` (CommitSignature has no ``decode`` of its own)."""
    return cls.from_rlp(enc.decode(raw))


def encode(value: Any) -> bytes:
    return enc.encode(value.to_rlp())


def fields_of(value: Any) -> list[enc.RLPItem]:
    item = value.to_rlp()
    assert isinstance(item, list)
    return item


def expect_rejected(cls: LedgerType, item: enc.RLPItem) -> None:
    with pytest.raises(EncodingError):
        decode(cls, enc.encode(item))


def type_id(cls: LedgerType) -> str:
    return cls.__name__


# --- round trips -----------------------------------------------------------------------------


@pytest.mark.parametrize("cls", TYPES, ids=type_id)
@given(data=st.data())
def test_decode_of_encode_is_identity(cls: LedgerType, data: st.DataObject) -> None:
    value = data.draw(STRATEGIES[cls])
    raw = encode(value)
    assert decode(cls, raw) == value
    if hasattr(value, "encode"):
        assert value.encode() == raw
        assert cls.decode(raw) == value  # type: ignore[union-attr]


@pytest.mark.parametrize("cls", TYPES, ids=type_id)
@given(raw=st.binary(max_size=400))
def test_random_bytes_decode_canonically_or_raise(cls: LedgerType, raw: bytes) -> None:
    try:
        value = decode(cls, raw)
    except EncodingError:
        return
    assert encode(value) == raw


# --- non-canonical encodings -----------------------------------------------------------------


@pytest.mark.parametrize("cls", TYPES, ids=type_id)
@pytest.mark.parametrize("suffix", [b"\x00", b"\x80", b"\xc0"])
@given(data=st.data())
def test_trailing_bytes_are_rejected(cls: LedgerType, suffix: bytes, data: st.DataObject) -> None:
    raw = encode(data.draw(STRATEGIES[cls]))
    with pytest.raises(EncodingError):
        decode(cls, raw + suffix)


@pytest.mark.parametrize("cls", TYPES, ids=type_id)
@given(data=st.data())
def test_integers_with_leading_zeros_are_rejected(cls: LedgerType, data: st.DataObject) -> None:
    fields = fields_of(data.draw(STRATEGIES[cls]))
    for position, kind in enumerate(SCHEMA[cls]):
        if kind == "int":
            padded = [*fields]
            padded[position] = b"\x00" + enc.as_bytes(fields[position], "int")
            expect_rejected(cls, padded)


@pytest.mark.parametrize("cls", TYPES, ids=type_id)
@given(data=st.data())
def test_wrong_field_counts_are_rejected(cls: LedgerType, data: st.DataObject) -> None:
    fields = fields_of(data.draw(STRATEGIES[cls]))
    expect_rejected(cls, [*fields, b""])
    expect_rejected(cls, [*fields, []])
    expect_rejected(cls, fields[:-1])
    expect_rejected(cls, fields[1:])
    expect_rejected(cls, [])


@pytest.mark.parametrize("cls", TYPES, ids=type_id)
@given(data=st.data())
def test_wrong_fixed_widths_are_rejected(cls: LedgerType, data: st.DataObject) -> None:
    fields = fields_of(data.draw(STRATEGIES[cls]))
    for position, kind in enumerate(SCHEMA[cls]):
        for wrong in WRONG_WIDTHS.get(kind, ()):
            mutated = [*fields]
            mutated[position] = wrong
            expect_rejected(cls, mutated)


@pytest.mark.parametrize("cls", TYPES, ids=type_id)
@given(data=st.data())
def test_list_where_a_string_is_expected_is_rejected(cls: LedgerType, data: st.DataObject) -> None:
    fields = fields_of(data.draw(STRATEGIES[cls]))
    for position, kind in enumerate(SCHEMA[cls]):
        mutated = [*fields]
        if kind in ("list", "topics"):
            mutated[position] = b""
        else:
            mutated[position] = [fields[position]]
        expect_rejected(cls, mutated)


def test_a_string_where_a_type_is_expected_is_rejected() -> None:
    for cls in TYPES:
        expect_rejected(cls, b"")
        expect_rejected(cls, b"\x01" * 20)


@given(ls.logs(), st.lists(ls.hashes, min_size=5, max_size=6))
def test_log_with_more_than_four_topics_is_rejected(log: Log, topics: list[Hash32]) -> None:
    expect_rejected(Log, [log.address, list(topics), log.data])


@given(ls.transactions(), st.integers(min_value=0, max_value=255).filter(lambda b: b != 4))
def test_compressed_or_bad_public_key_prefix_is_rejected(tx: Transaction, prefix: int) -> None:
    fields = fields_of(tx)
    fields[7] = bytes([prefix]) + tx.public_key[1:]
    expect_rejected(Transaction, fields)


@given(ls.receipts(), st.integers(min_value=2, max_value=2**64))
def test_receipt_status_other_than_0_or_1_is_rejected(receipt: Receipt, status: int) -> None:
    fields = fields_of(receipt)
    fields[1] = enc.encode_int(status)
    expect_rejected(Receipt, fields)


@given(ls.commit_signatures())
def test_empty_commit_signature_is_rejected(signature: CommitSignature) -> None:
    expect_rejected(CommitSignature, [signature.validator, b""])


@given(ls.commit_certificates().filter(lambda c: len(c.signatures) >= 2))
def test_unsorted_or_repeated_commit_signatures_are_rejected(
    certificate: CommitCertificate,
) -> None:
    fields = fields_of(certificate)
    signatures = fields[3]
    assert isinstance(signatures, list)
    expect_rejected(CommitCertificate, [*fields[:3], signatures[::-1]])
    expect_rejected(CommitCertificate, [*fields[:3], [signatures[0], *signatures]])


@given(ls.blocks(), ls.commit_certificates())
def test_block_optional_commit_holds_at_most_one_value(
    block: Block, certificate: CommitCertificate
) -> None:
    fields = fields_of(block)
    expect_rejected(Block, [*fields[:2], [certificate.to_rlp(), certificate.to_rlp()]])
    expect_rejected(Block, [*fields[:2], certificate.to_rlp()])


# --- hashes ----------------------------------------------------------------------------------


def _other_int(value: int) -> int:
    return value + 1 if value < ls.MAX_UINT256 else value - 1


def _other_bytes(value: bytes) -> bytes:
    return bytes([value[0] ^ 1]) + value[1:] if value else b"\x01"


CHANGES: dict[str, Callable[[Any], Any]] = {
    "chain_id": _other_int,
    "nonce": lambda v: Hash32(_other_bytes(v)),
    "block_limit": _other_int,
    "to": lambda v: Address(b"\x00" * 20) if v is None else None,
    "value": _other_int,
    "data": lambda v: v + b"\x00",
    "gas_limit": _other_int,
    "public_key": lambda v: PublicKeyBytes(v[:-1] + bytes([v[-1] ^ 1])),
    "signature": lambda v: v[:-1] if len(v) == MAX_SIGNATURE_SIZE else v + b"\x00",
}


def test_every_transaction_field_has_a_change() -> None:
    assert set(CHANGES) == {f.name for f in dataclasses.fields(Transaction)}


@given(ls.transactions(), st.sampled_from(sorted(CHANGES)))
def test_tx_hash_is_sm3_of_encoding_and_changes_with_any_field(tx: Transaction, field: str) -> None:
    assert tx.hash == sm3(tx.encode())
    changed = dataclasses.replace(tx, **{field: CHANGES[field](getattr(tx, field))})
    assert changed != tx
    assert changed.hash == sm3(changed.encode())
    assert changed.hash != tx.hash


@given(ls.transactions())
def test_sign_bytes_exclude_the_signature_and_carry_the_chain_id(tx: Transaction) -> None:
    assert tx.sign_bytes() == dataclasses.replace(tx, signature=b"\x01").sign_bytes()
    other_chain = dataclasses.replace(tx, chain_id=_other_int(tx.chain_id))
    assert tx.sign_bytes() != other_chain.sign_bytes()


@given(ls.headers(), ls.commit_certificates(), ls.blocks())
def test_header_certificate_and_block_hashes(
    header: Header, certificate: CommitCertificate, block: Block
) -> None:
    assert header.hash == sm3(header.encode())
    assert certificate.hash == sm3(certificate.encode())
    assert block.hash == block.header.hash
    later = dataclasses.replace(header, height=_other_int(header.height))
    assert later.hash != header.hash
