"""EVM execution of ledger transactions: the one module of the repository that imports py-evm.

What runs
    py-evm's Cancun rules (``CancunState`` / ``CancunComputation``), the fork matching the
    ``evmVersion`` "cancun" our contracts are compiled for (``scripts/compile_contracts.js``).
    py-evm is configured, not patched: the computation class is configured with two extra
    precompiles, and one method of the transaction executor is overridden to place created
    contracts at :func:`contract_address` instead of Ethereum's sender/nonce address.

Hashes
    The state root is py-evm's Keccak Merkle-Patricia trie root, and inside the EVM Keccak
    stays Keccak (KECCAK256, storage slots, ABI selectors, event topics), so standard Solidity
    and web3 tooling work unchanged. Everything the chain itself commits to (tx, receipt and
    block hashes, Merkle roots) is SM3; contracts reach SM3 and SM2 through the precompiles.

Gas
    Gas bounds work; it is not money. Gas price and base fee are 0, so an account needs no
    balance to transact. A transaction whose ``gas_limit`` exceeds the gas left in the block,
    whose ``gas_limit`` is below its intrinsic gas, whose ``value`` exceeds the sender's
    balance, or whose chain id differs from the block's is not applicable: a committed block
    must not contain it, so :func:`execute_block` raises :class:`InapplicableTransaction` and
    the proposer must leave it out. A transaction that reverts or runs out of gas is applied:
    its receipt has status 0, no logs, and its gas counts against the block.

Block environment
    ``COINBASE`` is the proposer, ``NUMBER`` the height, ``TIMESTAMP`` the block time in whole
    seconds, ``PREVRANDAO`` and ``BLOCKHASH`` are 0 (no randomness and no header history inside
    the EVM), ``CHAINID`` the ledger chain id, ``BASEFEE`` and ``GASPRICE`` 0.

Storage
    Execution never writes anywhere. State is read through a :class:`KeyValueReader`; every
    trie node and code blob that execution produces is captured and returned as ``writes``
    (content-addressed by Keccak: nothing is ever deleted), for the node to store in the same
    transaction as the block. :func:`account_at`, :func:`code_at` and :func:`storage_at` read
    one account, its code or one storage slot at any stored state root through py-evm's own
    account database, so no other module walks the trie.

Precompiles (addresses outside Ethereum's 0x01-0x11 range)
    ``SM3_PRECOMPILE`` (0x...5a03): input any bytes, output their 32-byte SM3 digest.
    Gas ``SM3_BASE_GAS + SM3_WORD_GAS`` per 32-byte input word (rounded up).

    ``SM2_VERIFY_PRECOMPILE`` (0x...5a02): input ``abi.encode(bytes publicKey, bytes message,
    bytes signature, bytes signerId)``, where ``publicKey`` is 65 bytes (0x04 || x || y),
    ``signature`` is DER, and an empty ``signerId`` means the default 1234567812345678.
    Output a 32-byte word: 1 if the signature verifies, else 0. An invalid signature or a
    malformed input never reverts; it returns 0 and the gas is consumed. Gas
    ``SM2_VERIFY_BASE_GAS + SM2_VERIFY_WORD_GAS`` per 32-byte input word (rounded up).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import cast

import rlp
from eth.abc import ComputationAPI, ExecutionContextAPI, SignedTransactionAPI, StateAPI
from eth.constants import BLANK_ROOT_HASH, CREATE_CONTRACT_ADDRESS, EMPTY_SHA3
from eth.db.account import AccountDB
from eth.db.atomic import AtomicDB
from eth.db.backends.base import BaseDB
from eth.rlp.accounts import Account as EvmAccount
from eth.vm.execution_context import ExecutionContext
from eth.vm.forks.berlin.transactions import calculate_txn_intrinsic_gas_berlin
from eth.vm.forks.cancun import CancunVM
from eth.vm.forks.cancun.computation import CancunComputation
from eth.vm.forks.cancun.state import CancunState, CancunTransactionExecutor
from eth.vm.interrupt import EVMMissingData
from eth.vm.message import Message
from eth_typing import Address as EvmAddress
from eth_typing import BlockNumber
from eth_typing import Hash32 as EvmHash32
from eth_utils.crypto import keccak
from eth_utils.exceptions import ValidationError as EvmValidationError
from trie.exceptions import MissingTrieNode
from trie.hexary import HexaryTrie

from chain.crypto import DEFAULT_SIGNER_ID, PublicKey, sm3
from chain.errors import ChainError, ExecutionError, GenesisError, StorageError
from chain.primitives import ADDRESS_SIZE, HASH_SIZE, ZERO_HASH, Address, Hash32
from chain.storage import KeyValueReader
from chain.types import Log, Receipt, Transaction

__all__ = [
    "CREATE_ADDRESS_PREFIX",
    "EMPTY_CODE_HASH",
    "EMPTY_STATE_ROOT",
    "SM2_VERIFY_BASE_GAS",
    "SM2_VERIFY_PRECOMPILE",
    "SM2_VERIFY_WORD_GAS",
    "SM3_BASE_GAS",
    "SM3_PRECOMPILE",
    "SM3_WORD_GAS",
    "AccountAlloc",
    "AccountInfo",
    "BlockContext",
    "BlockExecution",
    "CallResult",
    "CallReverted",
    "CallState",
    "InapplicableTransaction",
    "StateUpdate",
    "account_at",
    "call",
    "code_at",
    "contract_address",
    "estimate_gas",
    "execute_block",
    "genesis_state",
    "intrinsic_gas",
    "sender_address",
    "storage_at",
]

SM2_VERIFY_PRECOMPILE = Address(bytes.fromhex("0000000000000000000000000000000000005a02"))
"""Address of the SM2 signature verification precompile."""

SM3_PRECOMPILE = Address(bytes.fromhex("0000000000000000000000000000000000005a03"))
"""Address of the SM3 hash precompile."""

SM3_BASE_GAS = 60
"""Gas charged by the SM3 precompile for every call."""

SM3_WORD_GAS = 12
"""Gas charged by the SM3 precompile per 32-byte word of input."""

SM2_VERIFY_BASE_GAS = 3_000
"""Gas charged by the SM2 verify precompile for every call (one verification)."""

SM2_VERIFY_WORD_GAS = 12
"""Gas charged by the SM2 verify precompile per 32-byte word of input (message hashing)."""

CREATE_ADDRESS_PREFIX = b"lianxin/create"
"""Domain prefix of :func:`contract_address`."""

EMPTY_STATE_ROOT = Hash32(bytes(BLANK_ROOT_HASH))
"""The state root of a state without accounts (Keccak of the RLP empty string)."""

EMPTY_CODE_HASH = Hash32(bytes(EMPTY_SHA3))
"""The code hash of an account without code (Keccak of the empty string)."""

_UINT256_LIMIT = 2**256
_WORD_SIZE = 32
_SM2_VERIFY_FIELDS = 4
_EMPTY_READER: Mapping[bytes, bytes] = MappingProxyType({})


class InapplicableTransaction(ExecutionError):
    """A transaction that a committed block must not contain (see the module docstring);
    nothing of the block is applied."""

    def __init__(self, index: int, tx_hash: Hash32, reason: str) -> None:
        super().__init__(f"transaction {index} ({tx_hash.hex()}) is not applicable: {reason}")
        self.index = index
        """Position of the transaction in the block."""
        self.tx_hash = tx_hash
        """Hash of the transaction."""
        self.reason = reason
        """Which rule it breaks."""


class CallReverted(ExecutionError):
    """A call that fails even with all the gas it was given (raised by :func:`estimate_gas`)."""

    def __init__(self, output: bytes) -> None:
        super().__init__(f"execution fails with the gas given (output {output.hex() or 'empty'})")
        self.output = output
        """Revert data (empty when the call ran out of gas or hit an invalid opcode)."""


@dataclass(frozen=True)
class AccountAlloc:
    """The genesis content of one account."""

    balance: int = 0
    """Native balance (not needed for gas, which costs nothing)."""
    code: bytes = b""
    """Runtime code of a contract account; empty for a plain account."""
    storage: Mapping[int, int] = field(default_factory=lambda: MappingProxyType({}))
    """Storage slot → value, both below 2**256."""


@dataclass(frozen=True)
class AccountInfo:
    """One account as the state holds it (an absent account reads as the empty one)."""

    nonce: int = 0
    """Transactions the account sent, plus contracts created (the EVM nonce)."""
    balance: int = 0
    """Native balance."""
    code_hash: Hash32 = EMPTY_CODE_HASH
    """Keccak of the account's runtime code."""
    storage_root: Hash32 = EMPTY_STATE_ROOT
    """Root of the account's storage trie (the empty trie's root when it has no storage)."""


@dataclass(frozen=True)
class StateUpdate:
    """A state root and the key-value pairs that make it readable."""

    state_root: Hash32
    """Root of the state trie (Keccak Merkle-Patricia)."""
    writes: Mapping[bytes, bytes]
    """Trie nodes and code to add to the state key-value space."""


@dataclass(frozen=True)
class BlockContext:
    """The environment in which a block's transactions execute."""

    chain_id: int
    """The ledger's chain id (the EVM's CHAINID); every transaction must carry it."""
    height: int
    """Block height (the EVM's NUMBER)."""
    timestamp_ms: int
    """Block time in milliseconds since the Unix epoch; the EVM's TIMESTAMP is it // 1000."""
    proposer: Address
    """The proposing validator (the EVM's COINBASE)."""
    gas_limit: int = 30_000_000
    """Upper bound on the gas that all transactions of the block may use together."""


@dataclass(frozen=True)
class BlockExecution:
    """The outcome of executing a block."""

    state_root: Hash32
    """State root after the last transaction."""
    receipts: tuple[Receipt, ...]
    """One receipt per transaction, in block order."""
    writes: Mapping[bytes, bytes]
    """Trie nodes and code to store with the block (see :class:`StateUpdate`)."""


@dataclass(frozen=True)
class CallResult:
    """The outcome of a read-only call."""

    success: bool
    """Whether execution completed without revert or exceptional halt."""
    output: bytes
    """Return data, or revert data when ``success`` is false."""
    gas_used: int
    """Gas the call consumed (after refunds), intrinsic gas included."""


class _OverlayDB(BaseDB):
    """py-evm's key-value database over a read-only reader: reads fall through to the reader
    unless written here; writes are only captured in ``writes``."""

    def __init__(self, reader: KeyValueReader) -> None:
        self._reader = reader
        self.writes: dict[bytes, bytes] = {}

    def __getitem__(self, key: bytes) -> bytes:
        value = self.writes.get(key)
        if value is None:
            value = self._reader.get(key)
            if value is None:
                raise KeyError(key)
        return value

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.writes[key] = value

    def _exists(self, key: bytes) -> bool:
        return key in self.writes or self._reader.get(key) is not None

    def __delitem__(self, key: bytes) -> None:
        # Keys are Keccak digests of their values, so a key that is no longer referenced
        # is harmless; dropping only our own pending write keeps the reader untouched.
        self.writes.pop(key, None)


def _words(length: int) -> int:
    return (length + _WORD_SIZE - 1) // _WORD_SIZE


def _sm3_precompile(computation: ComputationAPI) -> ComputationAPI:
    data = computation.msg.data_as_bytes
    computation.consume_gas(
        SM3_BASE_GAS + SM3_WORD_GAS * _words(len(data)), reason="SM3 precompile"
    )
    computation.output = sm3(data)
    return computation


def _decode_bytes_fields(data: bytes, count: int) -> tuple[bytes, ...] | None:
    """Decode ``abi.encode(bytes, ..., bytes)`` with ``count`` fields, or None if malformed."""
    if len(data) < _WORD_SIZE * count:
        return None
    fields: list[bytes] = []
    for index in range(count):
        offset = int.from_bytes(data[_WORD_SIZE * index : _WORD_SIZE * (index + 1)], "big")
        start = offset + _WORD_SIZE
        if start > len(data):
            return None
        length = int.from_bytes(data[offset:start], "big")
        if start + length > len(data):
            return None
        fields.append(data[start : start + length])
    return tuple(fields)


def _sm2_signature_valid(data: bytes) -> bool:
    fields = _decode_bytes_fields(data, _SM2_VERIFY_FIELDS)
    if fields is None:
        return False
    public_key, message, signature, signer_id = fields
    try:
        PublicKey.from_bytes(public_key).verify(signature, message, signer_id or DEFAULT_SIGNER_ID)
    except (ChainError, ValueError):
        return False
    return True


def _sm2_verify_precompile(computation: ComputationAPI) -> ComputationAPI:
    data = computation.msg.data_as_bytes
    computation.consume_gas(
        SM2_VERIFY_BASE_GAS + SM2_VERIFY_WORD_GAS * _words(len(data)),
        reason="SM2 verify precompile",
    )
    computation.output = int(_sm2_signature_valid(data)).to_bytes(_WORD_SIZE, "big")
    return computation


_PRECOMPILES: dict[EvmAddress, Callable[[ComputationAPI], ComputationAPI]] = {
    **CancunComputation.get_precompiles(),
    EvmAddress(SM2_VERIFY_PRECOMPILE): _sm2_verify_precompile,
    EvmAddress(SM3_PRECOMPILE): _sm3_precompile,
}

_LedgerComputation = CancunComputation.configure(
    __name__="LedgerComputation", _precompiles=_PRECOMPILES
)


class _LedgerTransactionExecutor(CancunTransactionExecutor):
    """Cancun's executor, except that a creating transaction's contract lands at the address
    the ledger derives from the transaction (see :func:`contract_address`)."""

    def build_evm_message(self, transaction: SignedTransactionAPI) -> Message:
        # Cancun's executor builds a concrete Message, whose storage address is settable.
        message = cast(Message, super().build_evm_message(transaction))
        create_address = cast(_EvmTransaction, transaction).create_address
        if message.is_create and create_address is not None:
            message.storage_address = EvmAddress(create_address)
        return message


_LedgerState = CancunState.configure(
    __name__="LedgerState",
    computation_class=_LedgerComputation,
    transaction_executor_class=_LedgerTransactionExecutor,
)


class _EvmTransaction:
    """The view of a transaction that py-evm's executor reads: zero gas price, no access
    list, and the account's current EVM nonce (the ledger's replay protection is the random
    nonce, checked before execution; the EVM nonce only counts transactions)."""

    type_id = None
    gas_price = 0
    max_fee_per_gas = 0
    max_priority_fee_per_gas = 0
    access_list: tuple[tuple[bytes, tuple[int, ...]], ...] = ()
    # Signatures are SM2 and checked outside the EVM; this value only satisfies py-evm's
    # secp256k1 malleability check (0 < s <= n/2).
    s = 1

    def __init__(
        self,
        *,
        sender: Address,
        to: Address | None,
        value: int,
        data: bytes,
        gas: int,
        nonce: int,
        create_address: Address | None,
    ) -> None:
        self.sender = sender
        self.to = CREATE_CONTRACT_ADDRESS if to is None else to
        self.value = value
        self.data = data
        self.gas = gas
        self.nonce = nonce
        self.create_address = create_address
        self.intrinsic_gas: int = calculate_txn_intrinsic_gas_berlin(self.as_evm())

    def as_evm(self) -> SignedTransactionAPI:
        """This view, typed as what py-evm expects (it reads only the attributes above)."""
        return cast(SignedTransactionAPI, self)

    def validate(self) -> None:
        """Field checks happened at admission (chain.types and the validator)."""

    def __repr__(self) -> str:
        return f"_EvmTransaction(sender={self.sender.hex()}, gas={self.gas})"


def sender_address(tx: Transaction) -> Address:
    """The sender of ``tx``: the last 20 bytes of SM3 of its public key without the 0x04
    prefix. The signature is not checked here."""
    return Address(sm3(tx.public_key[1:])[-ADDRESS_SIZE:])


def contract_address(sender: Address, tx: Transaction) -> Address:
    """Where a contract created by ``tx`` from ``sender`` lives: the last 20 bytes of
    SM3(``CREATE_ADDRESS_PREFIX`` || sender || tx.nonce). Known before execution, since the
    replay nonce is random and unique."""
    return _create_address(sender, tx.nonce)


def _create_address(sender: Address, nonce: Hash32) -> Address:
    return Address(sm3(CREATE_ADDRESS_PREFIX + sender + nonce)[-ADDRESS_SIZE:])


def intrinsic_gas(tx: Transaction) -> int:
    """The gas a transaction costs before any code runs (base cost, call data, creation);
    a ``gas_limit`` below it makes the transaction inapplicable."""
    view = _EvmTransaction(
        sender=Address(bytes(ADDRESS_SIZE)),
        to=tx.to,
        value=tx.value,
        data=tx.data,
        gas=tx.gas_limit,
        nonce=0,
        create_address=None,
    )
    return view.intrinsic_gas


def _check_address(value: bytes, what: str, error: type[ChainError]) -> Address:
    if not isinstance(value, bytes) or len(value) != ADDRESS_SIZE:
        raise error(f"{what}: expected a {ADDRESS_SIZE}-byte address")
    return Address(value)


def _check_uint(value: int, what: str, error: type[ChainError], limit: int = _UINT256_LIMIT) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < limit:
        raise error(f"{what}: expected an integer in [0, {limit})")
    return value


def _execution_context(context: BlockContext) -> ExecutionContextAPI:
    proposer = _check_address(context.proposer, "BlockContext.proposer", ExecutionError)
    timestamp_ms = _check_uint(context.timestamp_ms, "BlockContext.timestamp_ms", ExecutionError)
    return ExecutionContext(
        coinbase=EvmAddress(proposer),
        timestamp=timestamp_ms // 1000,
        block_number=BlockNumber(
            _check_uint(context.height, "BlockContext.height", ExecutionError)
        ),
        difficulty=0,
        mix_hash=EvmHash32(ZERO_HASH),
        gas_limit=_check_uint(context.gas_limit, "BlockContext.gas_limit", ExecutionError),
        prev_hashes=(),
        chain_id=_check_uint(context.chain_id, "BlockContext.chain_id", ExecutionError),
        base_fee_per_gas=0,
        excess_blob_gas=0,
    )


def _open_state(
    reader: KeyValueReader, state_root: Hash32, context: BlockContext
) -> tuple[StateAPI, _OverlayDB]:
    if not isinstance(state_root, bytes) or len(state_root) != HASH_SIZE:
        raise ExecutionError(f"state root: expected {HASH_SIZE} bytes")
    if state_root != EMPTY_STATE_ROOT and reader.get(state_root) is None:
        raise ExecutionError(f"state root {state_root.hex()} is not in the state store")
    evm_context = _execution_context(context)
    overlay = _OverlayDB(reader)
    return _LedgerState(AtomicDB(overlay), evm_context, EvmHash32(state_root)), overlay


def _state_overlay(reader: KeyValueReader, state_root: Hash32) -> _OverlayDB:
    if not isinstance(state_root, bytes) or len(state_root) != HASH_SIZE:
        raise ExecutionError(f"state root: expected {HASH_SIZE} bytes")
    return _OverlayDB(reader)


def _missing_state(state_root: Hash32, exc: Exception) -> StorageError:
    return StorageError(f"state at root {state_root.hex()} is incomplete: {exc}")


def account_at(reader: KeyValueReader, state_root: Hash32, address: Address) -> AccountInfo:
    """The account at ``address`` in the state with ``state_root`` (the empty account if
    absent). Raises ExecutionError on a malformed root or address, StorageError when a trie
    node of the state is missing from ``reader``."""
    overlay = _state_overlay(reader, state_root)
    evm_address = _check_address(address, "address", ExecutionError)
    accounts = HexaryTrie(overlay, EvmHash32(state_root))
    try:
        # py-evm's account trie is keyed by the Keccak of the address.
        encoded = accounts.get(keccak(evm_address))
    except MissingTrieNode as exc:
        raise _missing_state(state_root, exc) from exc
    if not encoded:
        return AccountInfo()
    account = rlp.decode(encoded, sedes=EvmAccount)
    return AccountInfo(
        nonce=account.nonce,
        balance=account.balance,
        code_hash=Hash32(bytes(account.code_hash)),
        storage_root=Hash32(bytes(account.storage_root)),
    )


def _account_db(reader: KeyValueReader, state_root: Hash32) -> AccountDB:
    """py-evm's account database over ``reader`` at ``state_root``; it is only read."""
    return AccountDB(AtomicDB(_state_overlay(reader, state_root)), EvmHash32(state_root))


def code_at(reader: KeyValueReader, state_root: Hash32, address: Address) -> bytes:
    """The runtime code at ``address`` in the state with ``state_root`` (empty for a plain or
    absent account). Raises as :func:`account_at` does, and StorageError when the code
    itself is missing."""
    accounts = _account_db(reader, state_root)
    evm_address = EvmAddress(_check_address(address, "address", ExecutionError))
    try:
        return bytes(accounts.get_code(evm_address))
    except (MissingTrieNode, EVMMissingData) as exc:
        raise _missing_state(state_root, exc) from exc


def storage_at(reader: KeyValueReader, state_root: Hash32, address: Address, slot: int) -> int:
    """The value of storage ``slot`` of ``address`` in the state with ``state_root`` (0 if
    never written). Raises as :func:`account_at` does, and ExecutionError on a slot outside
    [0, 2**256)."""
    accounts = _account_db(reader, state_root)
    evm_address = EvmAddress(_check_address(address, "address", ExecutionError))
    _check_uint(slot, "slot", ExecutionError)
    try:
        return int(accounts.get_storage(evm_address, slot))
    except (MissingTrieNode, EVMMissingData) as exc:
        raise _missing_state(state_root, exc) from exc


def _apply(state: StateAPI, view: _EvmTransaction) -> tuple[ComputationAPI, int]:
    """Run one transaction on ``state``; return its computation and the gas it used.
    Raises py-evm's ValidationError (before changing anything) if it is not applicable."""
    state.lock_changes()
    computation = state.apply_transaction(view.as_evm())
    return computation, CancunVM.finalize_gas_used(view.as_evm(), computation)


def _receipt(
    tx: Transaction, view: _EvmTransaction, computation: ComputationAPI, gas_used: int
) -> Receipt:
    success = bool(computation.is_success)
    logs = (
        tuple(
            Log(
                address=Address(bytes(address)),
                topics=tuple(Hash32(topic.to_bytes(HASH_SIZE, "big")) for topic in topics),
                data=bytes(data),
            )
            for address, topics, data in computation.get_log_entries()
        )
        if success
        else ()
    )
    created = view.create_address if success and view.to == CREATE_CONTRACT_ADDRESS else None
    return Receipt(
        tx_hash=tx.hash,
        status=int(success),
        gas_used=gas_used,
        contract_address=created,
        logs=logs,
        # A successful creation returns the runtime code, which the state already holds.
        output=b"" if created is not None else bytes(computation.output),
    )


def genesis_state(alloc: Mapping[Address, AccountAlloc]) -> StateUpdate:
    """Build the genesis state holding ``alloc``; raises GenesisError on an address that is
    not 20 bytes or a balance, slot or value outside [0, 2**256)."""
    # No code runs at genesis; the context only satisfies the state's constructor.
    context = BlockContext(chain_id=0, height=0, timestamp_ms=0, proposer=Address(bytes(20)))
    state, overlay = _open_state(_EMPTY_READER, EMPTY_STATE_ROOT, context)
    for address in sorted(alloc):
        account = alloc[address]
        name = f"alloc[{bytes(address).hex()}]"
        evm_address = EvmAddress(_check_address(address, name, GenesisError))
        if not isinstance(account, AccountAlloc):
            raise GenesisError(f"{name}: expected an AccountAlloc")
        state.set_balance(
            evm_address, _check_uint(account.balance, f"{name}.balance", GenesisError)
        )
        if not isinstance(account.code, bytes):
            raise GenesisError(f"{name}.code: expected bytes")
        if account.code:
            state.set_code(evm_address, account.code)
        for slot in sorted(account.storage):
            _check_uint(slot, f"{name}.storage slot", GenesisError)
            value = _check_uint(account.storage[slot], f"{name}.storage value", GenesisError)
            state.set_storage(evm_address, slot, value)
    state.lock_changes()
    state.persist()
    return StateUpdate(
        state_root=Hash32(bytes(state.state_root)), writes=MappingProxyType(overlay.writes)
    )


def execute_block(
    state: KeyValueReader,
    state_root: Hash32,
    context: BlockContext,
    transactions: Sequence[Transaction],
) -> BlockExecution:
    """Execute ``transactions`` in order on the state at ``state_root``, in one py-evm state
    persisted once at the end. Writes nothing: the new trie nodes and code are returned.

    Raises :class:`InapplicableTransaction` (an ExecutionError) if a transaction's chain id
    differs from ``context.chain_id``, its ``gas_limit`` exceeds the gas left in the block or
    is below its intrinsic gas, or its ``value`` exceeds the sender's balance; ExecutionError
    if ``state_root`` is not readable or ``context`` is malformed. Same inputs, same result.
    """
    evm_state, overlay = _open_state(state, state_root, context)
    gas_left = context.gas_limit
    receipts: list[Receipt] = []
    for index, tx in enumerate(transactions):
        if tx.chain_id != context.chain_id:
            raise InapplicableTransaction(
                index, tx.hash, f"chain id {tx.chain_id}, block chain id {context.chain_id}"
            )
        if tx.gas_limit > gas_left:
            raise InapplicableTransaction(
                index, tx.hash, f"gas limit {tx.gas_limit} exceeds the {gas_left} left in block"
            )
        sender = sender_address(tx)
        view = _EvmTransaction(
            sender=sender,
            to=tx.to,
            value=tx.value,
            data=tx.data,
            gas=tx.gas_limit,
            nonce=evm_state.get_nonce(EvmAddress(sender)),
            create_address=contract_address(sender, tx) if tx.to is None else None,
        )
        if tx.gas_limit < view.intrinsic_gas:
            raise InapplicableTransaction(
                index, tx.hash, f"gas limit {tx.gas_limit} below intrinsic gas {view.intrinsic_gas}"
            )
        try:
            computation, gas_used = _apply(evm_state, view)
        except EvmValidationError as exc:
            raise InapplicableTransaction(index, tx.hash, str(exc)) from exc
        gas_left -= gas_used
        receipts.append(_receipt(tx, view, computation, gas_used))
    evm_state.lock_changes()
    evm_state.persist()
    return BlockExecution(
        state_root=Hash32(bytes(evm_state.state_root)),
        receipts=tuple(receipts),
        writes=MappingProxyType(overlay.writes),
    )


class CallState:
    """The state at one state root under one block context, opened once and reused by many
    read-only calls: every call's changes are rolled back afterwards, so each call sees the
    state exactly as a freshly opened one would, while the accounts, storage slots and code
    that earlier calls read stay decoded in py-evm's caches. Not safe to share between
    threads; give each thread its own."""

    def __init__(self, reader: KeyValueReader, state_root: Hash32, context: BlockContext) -> None:
        """Open the state; raises ExecutionError when ``state_root`` is not readable or
        ``context`` is malformed."""
        self.state_root = state_root
        """The state root every call runs on."""
        self.context = context
        """The block context every call runs in."""
        self._state, _ = _open_state(reader, state_root, context)

    def _run(
        self, sender: Address, to: Address | None, data: bytes, gas: int, value: int
    ) -> tuple[ComputationAPI, int]:
        _check_address(sender, "sender", ExecutionError)
        if to is not None:
            _check_address(to, "to", ExecutionError)
        if not isinstance(data, bytes):
            raise ExecutionError("data: expected bytes")
        _check_uint(gas, "gas", ExecutionError, 2**64)
        _check_uint(value, "value", ExecutionError)
        evm_state = self._state
        view = _EvmTransaction(
            sender=sender,
            to=to,
            value=value,
            data=data,
            gas=gas,
            nonce=evm_state.get_nonce(EvmAddress(sender)),
            create_address=_create_address(sender, ZERO_HASH) if to is None else None,
        )
        if gas < view.intrinsic_gas:
            raise ExecutionError(f"gas {gas} below intrinsic gas {view.intrinsic_gas}")
        snapshot = evm_state.snapshot()
        try:
            computation = evm_state.apply_transaction(view.as_evm())
            return computation, CancunVM.finalize_gas_used(view.as_evm(), computation)
        except EvmValidationError as exc:
            raise ExecutionError(f"call not applicable: {exc}") from exc
        finally:
            evm_state.revert(snapshot)

    def call(
        self,
        *,
        sender: Address,
        to: Address | None,
        data: bytes,
        gas: int = 10_000_000,
        value: int = 0,
    ) -> CallResult:
        """As :func:`call`, on this state."""
        computation, gas_used = self._run(sender, to, data, gas, value)
        return CallResult(
            success=bool(computation.is_success),
            output=bytes(computation.output),
            gas_used=gas_used,
        )

    def estimate_gas(
        self,
        *,
        sender: Address,
        to: Address | None,
        data: bytes,
        gas: int = 10_000_000,
        value: int = 0,
    ) -> int:
        """As :func:`estimate_gas`, on this state."""

        def succeeds(limit: int) -> tuple[bool, ComputationAPI]:
            computation, _ = self._run(sender, to, data, limit, value)
            return bool(computation.is_success), computation

        ok, computation = succeeds(gas)
        if not ok:
            raise CallReverted(bytes(computation.output))
        # Gas consumed before refunds is a lower bound; the 63/64 rule and refunds can make
        # the needed limit larger, so search between the two.
        consumed = gas - computation.get_gas_remaining()
        low, high = consumed - 1, gas
        while high - low > 1:
            middle = (low + high) // 2
            try:
                middle_ok = succeeds(middle)[0]
            except ExecutionError:
                middle_ok = False
            if middle_ok:
                high = middle
            else:
                low = middle
        return high


def call(
    state: KeyValueReader,
    state_root: Hash32,
    context: BlockContext,
    *,
    sender: Address,
    to: Address | None,
    data: bytes,
    gas: int = 10_000_000,
    value: int = 0,
) -> CallResult:
    """Execute a message call (``eth_call``) on the state at ``state_root`` and discard every
    change. With ``to=None``, ``data`` runs as init code. Raises ExecutionError on malformed
    inputs, ``gas`` below the intrinsic gas, or ``value`` above the sender's balance; a
    revert is a result (``success=False``), not an error."""
    return CallState(state, state_root, context).call(
        sender=sender, to=to, data=data, gas=gas, value=value
    )


def estimate_gas(
    state: KeyValueReader,
    state_root: Hash32,
    context: BlockContext,
    *,
    sender: Address,
    to: Address | None,
    data: bytes,
    gas: int = 10_000_000,
    value: int = 0,
) -> int:
    """The smallest gas limit (at most ``gas``) with which the call succeeds on the state at
    ``state_root``. Raises :class:`CallReverted` if it fails even with ``gas``, and
    ExecutionError on malformed inputs as :func:`call` does."""
    return CallState(state, state_root, context).estimate_gas(
        sender=sender, to=to, data=data, gas=gas, value=value
    )
