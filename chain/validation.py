"""Transaction admission rules: size, chain id, block-limit window, gas limit, nonce replay,
signature.

Every rule breaks with its own subclass of :class:`chain.errors.ValidationError` that carries
the offending transaction's hash and the numbers involved, so that a mempool or an RPC layer
can map it to an error code without parsing a message. The same checks serve the mempool
(one transaction at a time) and block validation (a whole candidate set).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chain.crypto import PrivateKey, PublicKey
from chain.crypto.sm3 import sm3
from chain.errors import CryptoError, EncodingError, ValidationError
from chain.primitives import Hash32
from chain.types import Transaction
from chain.upgrades import NO_UPGRADES, ParameterSchedule

if TYPE_CHECKING:
    from chain.genesis import Genesis

NonceSeen = Callable[[Hash32], bool]
"""Answers whether a nonce was committed within the current block-limit window."""


@dataclass(frozen=True)
class TxRules:
    """The protocol parameters transaction validation depends on."""

    chain_id: int
    """The chain this node serves; transactions for any other chain are refused."""
    max_block_limit_window: int = 1000
    """How far above the current height a transaction's ``block_limit`` may reach. It also
    bounds how long a committed nonce must be remembered."""
    max_data_size: int = 128 * 1024
    """Largest ``data`` (call data or init code) in bytes."""
    max_tx_size: int = 160 * 1024
    """Largest canonical encoding of a whole transaction in bytes."""
    block_gas_limit: int | None = None
    """Gas limit of a block: no transaction may ask for more. ``None`` leaves the upper bound
    unchecked (the intrinsic-gas lower bound always holds)."""
    upgrades: ParameterSchedule = NO_UPGRADES
    """The genesis parameter schedule (:mod:`chain.upgrades`): from each entry's height on,
    its value of ``block_gas_limit`` rules."""

    def block_gas_limit_at(self, height: int) -> int | None:
        """The block gas limit ruling the block at ``height`` (``None``: unchecked)."""
        if self.block_gas_limit is None:
            return None
        return self.upgrades.value_at("block_gas_limit", height, self.block_gas_limit)


def tx_rules_of(genesis: Genesis) -> TxRules:
    """The transaction rules of the chain ``genesis`` describes: its chain id, and its block
    gas limit with the changes its parameter schedule makes."""
    return TxRules(
        genesis.chain_id, block_gas_limit=genesis.block_gas_limit, upgrades=genesis.upgrades
    )


class InvalidTransaction(ValidationError):
    """A transaction that breaks an admission rule. ``tx_hash`` identifies it: the hash of
    the decoded transaction, or SM3 of the raw bytes when they did not decode."""

    tx_hash: Hash32

    def __init__(self, message: str, *, tx_hash: Hash32) -> None:
        super().__init__(message)
        self.tx_hash = tx_hash

    def __reduce__(self) -> tuple[Any, ...]:
        # Exceptions pickle as ``cls(*args)`` by default, which does not fit keyword-only
        # constructors; rebuild from the message and the attributes instead.
        return (_rebuild_error, (type(self), str(self), dict(self.__dict__)))


def _rebuild_error(
    cls: type[InvalidTransaction], message: str, attributes: dict[str, Any]
) -> InvalidTransaction:
    error = cls.__new__(cls)
    ValidationError.__init__(error, message)
    error.__dict__.update(attributes)
    return error


class BadEncoding(InvalidTransaction):
    """Raw bytes that are not the canonical encoding of a transaction. The decoder's
    :class:`~chain.errors.EncodingError` is the ``__cause__``; ``reason`` is its message."""

    def __init__(self, *, tx_hash: Hash32, reason: str) -> None:
        super().__init__(f"transaction {tx_hash.hex()}: bad encoding: {reason}", tx_hash=tx_hash)
        self.reason = reason


class OversizeTransaction(InvalidTransaction):
    """A raw transaction longer than ``TxRules.max_tx_size``."""

    def __init__(self, *, tx_hash: Hash32, size: int, limit: int) -> None:
        super().__init__(
            f"transaction {tx_hash.hex()}: {size} bytes, more than {limit}", tx_hash=tx_hash
        )
        self.size = size
        self.limit = limit


class OversizeData(InvalidTransaction):
    """A transaction whose ``data`` is longer than ``TxRules.max_data_size``."""

    def __init__(self, *, tx_hash: Hash32, size: int, limit: int) -> None:
        super().__init__(
            f"transaction {tx_hash.hex()}: data of {size} bytes, more than {limit}",
            tx_hash=tx_hash,
        )
        self.size = size
        self.limit = limit


MAX_INIT_CODE_SIZE = 2 * 24_576
"""Largest init code of a contract creation (EIP-3860): the EVM refuses a longer one before
running it, so no block can include it."""


class OversizeInitCode(OversizeData):
    """A contract creation whose init code is longer than :data:`MAX_INIT_CODE_SIZE`."""


class WrongChainId(InvalidTransaction):
    """A transaction signed for another chain."""

    def __init__(self, *, tx_hash: Hash32, chain_id: int, expected: int) -> None:
        super().__init__(
            f"transaction {tx_hash.hex()}: chain id {chain_id}, expected {expected}",
            tx_hash=tx_hash,
        )
        self.chain_id = chain_id
        self.expected = expected


class TransactionExpired(InvalidTransaction):
    """A transaction whose ``block_limit`` is below the height of the block being built."""

    def __init__(self, *, tx_hash: Hash32, block_limit: int, height: int) -> None:
        super().__init__(
            f"transaction {tx_hash.hex()}: block limit {block_limit} is below height {height}",
            tx_hash=tx_hash,
        )
        self.block_limit = block_limit
        self.height = height


class BlockLimitTooFar(InvalidTransaction):
    """A transaction whose ``block_limit`` lies beyond ``height + max_block_limit_window``;
    accepting it would force nodes to remember its nonce for longer than the window."""

    def __init__(self, *, tx_hash: Hash32, block_limit: int, height: int, window: int) -> None:
        super().__init__(
            f"transaction {tx_hash.hex()}: block limit {block_limit} is more than {window} "
            f"above height {height}",
            tx_hash=tx_hash,
        )
        self.block_limit = block_limit
        self.height = height
        self.window = window


class GasLimitOutOfRange(InvalidTransaction):
    """A ``gas_limit`` below the transaction's intrinsic gas or above the block gas limit
    ruling ``height``: no block at that height could include it. ``maximum`` is ``None``
    when no block gas limit applies."""

    def __init__(
        self,
        *,
        tx_hash: Hash32,
        gas_limit: int,
        minimum: int,
        maximum: int | None,
        height: int | None = None,
    ) -> None:
        upper = "unbounded" if maximum is None else str(maximum)
        where = "" if height is None else f" (block gas limit at height {height})"
        super().__init__(
            f"transaction {tx_hash.hex()}: gas limit {gas_limit} outside "
            f"[{minimum}, {upper}]{where}",
            tx_hash=tx_hash,
        )
        self.gas_limit = gas_limit
        self.minimum = minimum
        self.maximum = maximum
        self.height = height


class DuplicateNonce(InvalidTransaction):
    """A transaction whose nonce was committed within the window (``committed`` is True) or
    is used by an earlier transaction of the same candidate set (``committed`` is False)."""

    def __init__(self, *, tx_hash: Hash32, nonce: Hash32, committed: bool) -> None:
        where = "already committed" if committed else "repeated in the same block"
        super().__init__(
            f"transaction {tx_hash.hex()}: nonce {nonce.hex()} {where}", tx_hash=tx_hash
        )
        self.nonce = nonce
        self.committed = committed


class BadSignature(InvalidTransaction):
    """A signature that does not verify for the transaction's public key, or a public key
    that is not a point of the SM2 curve. The crypto error is the ``__cause__``."""

    def __init__(self, *, tx_hash: Hash32, reason: str) -> None:
        super().__init__(f"transaction {tx_hash.hex()}: bad signature: {reason}", tx_hash=tx_hash)
        self.reason = reason


def decode_transaction(raw: bytes, rules: TxRules) -> Transaction:
    """Decode a transaction received from outside, checking its size first.

    Raises OversizeTransaction or BadEncoding (never a bare EncodingError)."""
    if len(raw) > rules.max_tx_size:
        raise OversizeTransaction(tx_hash=sm3(raw), size=len(raw), limit=rules.max_tx_size)
    try:
        return Transaction.decode(raw)
    except EncodingError as exc:
        raise BadEncoding(tx_hash=sm3(raw), reason=str(exc)) from exc


def validate_transaction(
    tx: Transaction, rules: TxRules, *, height: int, nonce_seen: NonceSeen
) -> None:
    """Return if ``tx`` may be included in the block at ``height``; raise the
    InvalidTransaction subclass of the first rule it breaks otherwise.

    The checks run cheapest first: chain id, block-limit window, data size, gas limit
    (at least the intrinsic gas, at most the block gas limit ruling ``height``), nonce replay
    (``nonce_seen`` answers for nonces committed within the window), then the SM2 signature.
    """
    _check_stateless(tx, rules, height=height)
    if nonce_seen(tx.nonce):
        raise DuplicateNonce(tx_hash=tx.hash, nonce=tx.nonce, committed=True)
    verify_transaction_signature(tx)


def validate_block_transactions(
    txs: Iterable[Transaction], rules: TxRules, height: int, nonce_seen: NonceSeen
) -> None:
    """Return if every transaction of a candidate block at ``height`` passes
    :func:`validate_transaction` and no nonce appears twice among them; raise the error of
    the first transaction that fails otherwise."""
    nonces_in_block: set[Hash32] = set()
    for tx in txs:
        _check_stateless(tx, rules, height=height)
        if tx.nonce in nonces_in_block:
            raise DuplicateNonce(tx_hash=tx.hash, nonce=tx.nonce, committed=False)
        if nonce_seen(tx.nonce):
            raise DuplicateNonce(tx_hash=tx.hash, nonce=tx.nonce, committed=True)
        verify_transaction_signature(tx)
        nonces_in_block.add(tx.nonce)


def verify_transaction_signature(tx: Transaction) -> None:
    """Return if ``tx.signature`` is a valid SM2 signature of ``tx.sign_bytes()`` by
    ``tx.public_key`` with the default signer ID; raise BadSignature otherwise."""
    try:
        PublicKey.from_bytes(tx.public_key).verify(tx.signature, tx.sign_bytes())
    except CryptoError as exc:
        raise BadSignature(tx_hash=tx.hash, reason=str(exc)) from exc


def sign_transaction(tx: Transaction, key: PrivateKey) -> Transaction:
    """Return ``tx`` with ``public_key`` set to ``key``'s public key and ``signature`` set to
    an SM2 signature over its sign-bytes (default signer ID). Any previous signature is
    replaced."""
    unsigned = dataclasses.replace(tx, public_key=key.public_key.to_bytes(), signature=b"")
    return dataclasses.replace(unsigned, signature=key.sign(unsigned.sign_bytes()))


def _check_stateless(tx: Transaction, rules: TxRules, *, height: int) -> None:
    """The rules that need neither state nor signature verification."""
    if tx.chain_id != rules.chain_id:
        raise WrongChainId(tx_hash=tx.hash, chain_id=tx.chain_id, expected=rules.chain_id)
    if tx.block_limit < height:
        raise TransactionExpired(tx_hash=tx.hash, block_limit=tx.block_limit, height=height)
    if tx.block_limit > height + rules.max_block_limit_window:
        raise BlockLimitTooFar(
            tx_hash=tx.hash,
            block_limit=tx.block_limit,
            height=height,
            window=rules.max_block_limit_window,
        )
    if len(tx.data) > rules.max_data_size:
        raise OversizeData(tx_hash=tx.hash, size=len(tx.data), limit=rules.max_data_size)
    if tx.to is None and len(tx.data) > MAX_INIT_CODE_SIZE:
        raise OversizeInitCode(tx_hash=tx.hash, size=len(tx.data), limit=MAX_INIT_CODE_SIZE)
    # Imported here, not with the module: signing a transaction (every ``lianxin`` command
    # that sends one) must not pay for importing the EVM, which checking one needs anyway.
    from chain.execution import intrinsic_gas

    minimum = intrinsic_gas(tx)
    maximum = rules.block_gas_limit_at(height)
    if tx.gas_limit < minimum or (maximum is not None and tx.gas_limit > maximum):
        raise GasLimitOutOfRange(
            tx_hash=tx.hash, gas_limit=tx.gas_limit, minimum=minimum, maximum=maximum, height=height
        )
