"""Ledger wire types: frozen dataclasses, each with one canonical RLP encoding.

``T.decode(t.encode()) == t`` for every value, and ``decode`` rejects every byte string that
is not exactly ``encode`` of some value. Hashes are SM3 of the canonical encoding.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cached_property

from chain import encoding as enc
from chain.crypto.sm3 import sm3
from chain.encoding import RLPItem
from chain.errors import EncodingError
from chain.primitives import (
    ADDRESS_SIZE,
    HASH_SIZE,
    PUBLIC_KEY_SIZE,
    Address,
    Hash32,
    PublicKeyBytes,
)

TX_SIGN_PREFIX = b"lianxin/tx/v1\x00"
"""Domain separation for transaction signatures (the chain id follows inside the payload)."""

MAX_SIGNATURE_SIZE = 72
"""A DER SM2 signature is at most 72 bytes (two 33-byte INTEGERs plus headers)."""


def _decoded(cls_name: str, data: bytes, count: int) -> list[RLPItem]:
    return enc.as_list(enc.decode(data), cls_name, count)


@dataclass(frozen=True)
class Log:
    """An event emitted by a contract during execution."""

    address: Address
    """The contract that emitted the event."""
    topics: tuple[Hash32, ...]
    """Indexed topics (Keccak-based, as the EVM computes them); at most 4."""
    data: bytes
    """Non-indexed ABI-encoded event data."""

    def to_rlp(self) -> RLPItem:
        return [self.address, list(self.topics), self.data]

    @classmethod
    def from_rlp(cls, item: RLPItem) -> Log:
        address, topics, data = enc.as_list(item, "Log", 3)
        topic_items = enc.as_list(topics, "Log.topics")
        if len(topic_items) > 4:
            raise EncodingError("Log.topics: at most 4 topics")
        return cls(
            address=Address(enc.as_bytes(address, "Log.address", ADDRESS_SIZE)),
            topics=tuple(Hash32(enc.as_bytes(t, "Log.topic", HASH_SIZE)) for t in topic_items),
            data=enc.as_bytes(data, "Log.data"),
        )


@dataclass(frozen=True)
class Transaction:
    """A signed transaction. Replay protection is the random ``nonce`` plus ``block_limit``,
    not a per-account sequence, so one sender can submit many transactions in parallel."""

    chain_id: int
    """The chain this transaction is valid on."""
    nonce: Hash32
    """32 random bytes chosen by the sender; unique within the ``block_limit`` window."""
    block_limit: int
    """The last height at which this transaction may be included."""
    to: Address | None
    """Recipient contract or account; ``None`` creates a contract from ``data``."""
    value: int
    """Native value transferred (0 by default; gas is not money on this chain)."""
    data: bytes
    """Call data, or init code for a contract creation."""
    gas_limit: int
    """Upper bound on the work this transaction may do."""
    public_key: PublicKeyBytes
    """The sender's uncompressed SM2 public key; the sender address derives from it."""
    signature: bytes = b""
    """DER SM2 signature over :meth:`sign_bytes` with the default signer ID."""

    def _unsigned_fields(self) -> list[RLPItem]:
        return [
            enc.encode_int(self.chain_id),
            self.nonce,
            enc.encode_int(self.block_limit),
            b"" if self.to is None else self.to,
            enc.encode_int(self.value),
            self.data,
            enc.encode_int(self.gas_limit),
            self.public_key,
        ]

    def sign_bytes(self) -> bytes:
        """The message the sender signs: a type prefix, then the RLP of every field but the
        signature (the chain id is its first field)."""
        return TX_SIGN_PREFIX + enc.encode(self._unsigned_fields())

    def to_rlp(self) -> RLPItem:
        return [*self._unsigned_fields(), self.signature]

    def encode(self) -> bytes:
        """The canonical encoding, made once: a transaction is immutable, and on its way
        through admission, the pool, the block and the store its encoding is asked for
        again and again (its hash, the pool's byte count, the block's byte budget, the
        block's encoding)."""
        return self._encoding

    @cached_property
    def _encoding(self) -> bytes:
        return enc.encode(self.to_rlp())

    @cached_property
    def hash(self) -> Hash32:
        """SM3 of the canonical encoding (signature included)."""
        return sm3(self.encode())

    @classmethod
    def from_rlp(cls, item: RLPItem) -> Transaction:
        (chain_id, nonce, block_limit, to, value, data, gas_limit, public_key, signature) = (
            enc.as_list(item, "Transaction", 9)
        )
        to_raw = enc.as_bytes(to, "Transaction.to")
        if len(to_raw) not in (0, ADDRESS_SIZE):
            raise EncodingError("Transaction.to: expected 0 or 20 bytes")
        key = enc.as_bytes(public_key, "Transaction.public_key", PUBLIC_KEY_SIZE)
        if key[0] != 0x04:
            raise EncodingError("Transaction.public_key: must be uncompressed (0x04)")
        sig = enc.as_bytes(signature, "Transaction.signature")
        if len(sig) > MAX_SIGNATURE_SIZE:
            raise EncodingError("Transaction.signature: longer than a DER SM2 signature")
        return cls(
            chain_id=enc.decode_int(chain_id, "Transaction.chain_id"),
            nonce=Hash32(enc.as_bytes(nonce, "Transaction.nonce", HASH_SIZE)),
            block_limit=enc.decode_int(block_limit, "Transaction.block_limit"),
            to=Address(to_raw) if to_raw else None,
            value=enc.decode_int(value, "Transaction.value"),
            data=enc.as_bytes(data, "Transaction.data"),
            gas_limit=enc.decode_int(gas_limit, "Transaction.gas_limit"),
            public_key=PublicKeyBytes(key),
            signature=sig,
        )

    @classmethod
    def decode(cls, data: bytes) -> Transaction:
        """Decode the canonical encoding; raises EncodingError on anything else."""
        return cls.from_rlp(enc.decode(data))


@dataclass(frozen=True)
class Receipt:
    """The outcome of executing one transaction."""

    tx_hash: Hash32
    """The transaction this receipt belongs to."""
    status: int
    """1 if execution succeeded, 0 if it reverted or ran out of gas."""
    gas_used: int
    """Gas consumed by this transaction."""
    contract_address: Address | None
    """The created contract, for a successful creation; otherwise ``None``."""
    logs: tuple[Log, ...]
    """Events emitted, in order (none when ``status`` is 0)."""
    output: bytes
    """Return data, or revert data when ``status`` is 0."""

    def to_rlp(self) -> RLPItem:
        return [
            self.tx_hash,
            enc.encode_int(self.status),
            enc.encode_int(self.gas_used),
            b"" if self.contract_address is None else self.contract_address,
            [log.to_rlp() for log in self.logs],
            self.output,
        ]

    def encode(self) -> bytes:
        """The canonical encoding; the receipt Merkle tree commits to it."""
        return enc.encode(self.to_rlp())

    @classmethod
    def from_rlp(cls, item: RLPItem) -> Receipt:
        tx_hash, status, gas_used, contract, logs, output = enc.as_list(item, "Receipt", 6)
        status_value = enc.decode_int(status, "Receipt.status")
        if status_value not in (0, 1):
            raise EncodingError("Receipt.status: must be 0 or 1")
        contract_raw = enc.as_bytes(contract, "Receipt.contract_address")
        if len(contract_raw) not in (0, ADDRESS_SIZE):
            raise EncodingError("Receipt.contract_address: expected 0 or 20 bytes")
        return cls(
            tx_hash=Hash32(enc.as_bytes(tx_hash, "Receipt.tx_hash", HASH_SIZE)),
            status=status_value,
            gas_used=enc.decode_int(gas_used, "Receipt.gas_used"),
            contract_address=Address(contract_raw) if contract_raw else None,
            logs=tuple(Log.from_rlp(x) for x in enc.as_list(logs, "Receipt.logs")),
            output=enc.as_bytes(output, "Receipt.output"),
        )

    @classmethod
    def decode(cls, data: bytes) -> Receipt:
        """Decode the canonical encoding; raises EncodingError on anything else."""
        return cls.from_rlp(enc.decode(data))


@dataclass(frozen=True)
class CommitSignature:
    """One validator's precommit signature inside a commit certificate."""

    validator: Address
    """The validator that signed."""
    signature: bytes
    """DER SM2 signature over the precommit sign-bytes (see ``chain.consensus``)."""

    def to_rlp(self) -> RLPItem:
        return [self.validator, self.signature]

    @classmethod
    def from_rlp(cls, item: RLPItem) -> CommitSignature:
        validator, signature = enc.as_list(item, "CommitSignature", 2)
        sig = enc.as_bytes(signature, "CommitSignature.signature")
        if not sig or len(sig) > MAX_SIGNATURE_SIZE:
            raise EncodingError("CommitSignature.signature: empty or too long")
        return cls(
            validator=Address(enc.as_bytes(validator, "CommitSignature.validator", ADDRESS_SIZE)),
            signature=sig,
        )


@dataclass(frozen=True)
class CommitCertificate:
    """Proof that a block was committed: precommits for ``block_hash`` at ``height`` and
    ``round`` from validators holding at least 2/3 of the voting power. Signatures are sorted
    by validator address, one per validator."""

    height: int
    """Height of the committed block."""
    round: int
    """Consensus round in which the block was committed."""
    block_hash: Hash32
    """Hash of the committed block."""
    signatures: tuple[CommitSignature, ...]
    """Precommit signatures, strictly ascending by validator address."""

    def __post_init__(self) -> None:
        addresses = [s.validator for s in self.signatures]
        if any(a >= b for a, b in itertools.pairwise(addresses)):
            raise EncodingError("CommitCertificate.signatures: not strictly sorted by validator")

    def to_rlp(self) -> RLPItem:
        return [
            enc.encode_int(self.height),
            enc.encode_int(self.round),
            self.block_hash,
            [s.to_rlp() for s in self.signatures],
        ]

    def encode(self) -> bytes:
        """The canonical encoding."""
        return enc.encode(self.to_rlp())

    @cached_property
    def hash(self) -> Hash32:
        """SM3 of the canonical encoding; the next block's header commits to it."""
        return sm3(self.encode())

    @classmethod
    def from_rlp(cls, item: RLPItem) -> CommitCertificate:
        height, round_, block_hash, signatures = enc.as_list(item, "CommitCertificate", 4)
        return cls(
            height=enc.decode_int(height, "CommitCertificate.height"),
            round=enc.decode_int(round_, "CommitCertificate.round"),
            block_hash=Hash32(enc.as_bytes(block_hash, "CommitCertificate.block_hash", HASH_SIZE)),
            signatures=tuple(
                CommitSignature.from_rlp(x)
                for x in enc.as_list(signatures, "CommitCertificate.signatures")
            ),
        )

    @classmethod
    def decode(cls, data: bytes) -> CommitCertificate:
        """Decode the canonical encoding; raises EncodingError on anything else."""
        return cls.from_rlp(enc.decode(data))


@dataclass(frozen=True)
class Header:
    """A block header. The block hash is SM3 of its canonical encoding."""

    parent_hash: Hash32
    """Hash of the previous block (zero for genesis)."""
    height: int
    """Height of this block (genesis is 0)."""
    timestamp_ms: int
    """Proposer's time in milliseconds since the Unix epoch; strictly increasing."""
    proposer: Address
    """Validator that proposed this block."""
    tx_root: Hash32
    """Merkle root (SM3) over the transaction hashes, in block order."""
    receipt_root: Hash32
    """Merkle root (SM3) over the receipts' canonical encodings, in block order."""
    state_root: Hash32
    """State root after executing this block's transactions."""
    validator_set_hash: Hash32
    """Hash of the validator set that must sign this block's commit certificate."""
    last_commit_hash: Hash32
    """Hash of the previous block's commit certificate (zero for heights 0 and 1)."""

    def to_rlp(self) -> RLPItem:
        return [
            self.parent_hash,
            enc.encode_int(self.height),
            enc.encode_int(self.timestamp_ms),
            self.proposer,
            self.tx_root,
            self.receipt_root,
            self.state_root,
            self.validator_set_hash,
            self.last_commit_hash,
        ]

    def encode(self) -> bytes:
        """The canonical encoding."""
        return enc.encode(self.to_rlp())

    @cached_property
    def hash(self) -> Hash32:
        """The block hash: SM3 of the canonical header encoding."""
        return sm3(self.encode())

    @classmethod
    def from_rlp(cls, item: RLPItem) -> Header:
        fields = enc.as_list(item, "Header", 9)

        def h(index: int, name: str) -> Hash32:
            return Hash32(enc.as_bytes(fields[index], f"Header.{name}", HASH_SIZE))

        return cls(
            parent_hash=h(0, "parent_hash"),
            height=enc.decode_int(fields[1], "Header.height"),
            timestamp_ms=enc.decode_int(fields[2], "Header.timestamp_ms"),
            proposer=Address(enc.as_bytes(fields[3], "Header.proposer", ADDRESS_SIZE)),
            tx_root=h(4, "tx_root"),
            receipt_root=h(5, "receipt_root"),
            state_root=h(6, "state_root"),
            validator_set_hash=h(7, "validator_set_hash"),
            last_commit_hash=h(8, "last_commit_hash"),
        )

    @classmethod
    def decode(cls, data: bytes) -> Header:
        """Decode the canonical encoding; raises EncodingError on anything else."""
        return cls.from_rlp(enc.decode(data))


@dataclass(frozen=True)
class Block:
    """A header, its transactions, and the commit certificate of the previous block."""

    header: Header
    """The header; ``header.hash`` is the block hash."""
    transactions: tuple[Transaction, ...]
    """Transactions in execution order."""
    last_commit: CommitCertificate | None
    """Certificate committing the parent block (``None`` at heights 0 and 1)."""

    @property
    def hash(self) -> Hash32:
        """The block hash (the header's hash)."""
        return self.header.hash

    def to_rlp(self) -> RLPItem:
        return [
            self.header.to_rlp(),
            [tx.to_rlp() for tx in self.transactions],
            enc.encode_optional(None if self.last_commit is None else self.last_commit.to_rlp()),
        ]

    def encode(self) -> bytes:
        """The canonical encoding: ``enc.encode(self.to_rlp())``, with each transaction's
        encoding, made once (:meth:`Transaction.encode`), spliced in rather than encoded
        again."""
        last_commit = None if self.last_commit is None else self.last_commit.to_rlp()
        return enc.encode_list_payload(
            enc.encode(self.header.to_rlp())
            + enc.encode_list_payload(b"".join([tx.encode() for tx in self.transactions]))
            + enc.encode(enc.encode_optional(last_commit))
        )

    @classmethod
    def from_rlp(cls, item: RLPItem) -> Block:
        header, transactions, last_commit = enc.as_list(item, "Block", 3)
        commit_item = enc.decode_optional(last_commit, "Block.last_commit")
        return cls(
            header=Header.from_rlp(header),
            transactions=tuple(
                Transaction.from_rlp(x) for x in enc.as_list(transactions, "Block.transactions")
            ),
            last_commit=None if commit_item is None else CommitCertificate.from_rlp(commit_item),
        )

    @classmethod
    def decode(cls, data: bytes) -> Block:
        """Decode the canonical encoding; raises EncodingError on anything else."""
        return cls.from_rlp(enc.decode(data))
