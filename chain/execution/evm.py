"""py-evm configured for the ledger: the Cancun state and computation with the ledger's
precompiles, contract addresses derived from the transaction, the view of a transaction that
py-evm reads, and a key-value overlay that captures every write instead of storing it."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from eth._utils.address import generate_contract_address
from eth.abc import ExecutionContextAPI, SignedTransactionAPI, StateAPI
from eth.constants import CREATE_CONTRACT_ADDRESS
from eth.db.atomic import AtomicDB
from eth.db.backends.base import BaseDB
from eth.vm.execution_context import ExecutionContext
from eth.vm.forks.berlin.transactions import calculate_txn_intrinsic_gas_berlin
from eth.vm.forks.cancun.computation import CancunComputation
from eth.vm.forks.cancun.state import CancunState, CancunTransactionExecutor
from eth.vm.message import Message
from eth_typing import Address as EvmAddress
from eth_typing import BlockNumber
from eth_typing import Hash32 as EvmHash32

from chain.crypto import sm3
from chain.errors import ChainError, ExecutionError
from chain.execution.model import (
    CREATE_ADDRESS_PREFIX,
    EMPTY_STATE_ROOT,
    BlockContext,
    CallInterrupted,
)
from chain.execution.precompiles import LEDGER_PRECOMPILES
from chain.primitives import ADDRESS_SIZE, HASH_SIZE, ZERO_HASH, Address, Hash32
from chain.storage import KeyValueReader
from chain.types import Transaction

UINT256_LIMIT = 2**256


class OverlayDB(BaseDB):
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


LedgerComputation = CancunComputation.configure(
    __name__="LedgerComputation", _precompiles=LEDGER_PRECOMPILES
)


class LedgerTransactionExecutor(CancunTransactionExecutor):
    """Cancun's executor, except that a creating transaction's contract lands at the address
    the ledger derives from the transaction (see :func:`contract_address`)."""

    def build_evm_message(self, transaction: SignedTransactionAPI) -> Message:
        # Cancun's executor builds a concrete Message, whose storage address is settable.
        message = cast(Message, super().build_evm_message(transaction))
        create_address = cast(EvmTransaction, transaction).create_address
        if message.is_create and create_address is not None:
            message.storage_address = EvmAddress(create_address)
        return message


class LedgerState(CancunState):
    """Cancun's state with the ledger's computation and executor, and no system contract
    set up when it opens.

    Cancun's state looks, as it opens, at the beacon-roots contract (EIP-4788) and would
    write its code again only where that very code already is (py-evm's test is inverted),
    so the look never changes the state; it cost an account lookup every time a state was
    opened: once per block and once per ``eth_call``. The ledger has no beacon chain; the
    contract is not part of its state."""

    computation_class = LedgerComputation
    transaction_executor_class = LedgerTransactionExecutor

    def set_system_contracts(self) -> None:
        """Nothing to set up (see the class documentation)."""


INTERRUPT_CHECK_CHARGES = 256
"""Gas charges a read-only call makes at most between two looks at its stop condition."""

INTERRUPT_CHECK_GAS = 20_000
"""Gas a read-only call charges at most between two looks at its stop condition (about 10 ms
of ordinary code here). Every opcode and every precompile charges gas before it works, so a
precompile that is slow for its gas (ECRECOVER and the BN254 pairing run in pure Python in
py-evm) is looked at before nearly every call, and a loop of cheap opcodes every few
thousand steps; the cost is a countdown per step (see CHARGE_WEIGHT)."""


CHARGE_WEIGHT = INTERRUPT_CHECK_GAS // INTERRUPT_CHECK_CHARGES
"""What one gas charge counts for, besides its gas, in the single countdown of
:class:`CallStop`: INTERRUPT_CHECK_CHARGES cheap charges, or INTERRUPT_CHECK_GAS gas, or any
mix of both, end a countdown."""


class CallStop:
    """The stop condition of the read-only call running on a :class:`InterruptibleState`."""

    __slots__ = ("_should_stop", "left", "steps")

    def __init__(self, should_stop: Callable[[], bool]) -> None:
        self._should_stop = should_stop
        self.left = INTERRUPT_CHECK_GAS
        """What is left of the countdown before the next look (see CHARGE_WEIGHT)."""
        self.steps = 0
        """Gas charges made so far: opcodes, precompiles, memory growth, calls."""

    def look(self) -> None:
        """Start the next countdown; raise :class:`CallInterrupted` if the stop condition
        holds (before the work of the charge that ended the countdown is done)."""
        self.left = INTERRUPT_CHECK_GAS
        if self._should_stop():
            raise CallInterrupted(self.steps)


class _InterruptibleComputation(LedgerComputation):  # type: ignore[misc, valid-type]
    """The ledger computation, whose every gas charge first counts down the state's
    :class:`CallStop`, which looks at its stop condition when the countdown ends.
    ``CallInterrupted`` is not a VM error, so it is not turned into a failed call: it leaves
    py-evm, and the caller rolls the state back."""

    def consume_gas(self, amount: int, reason: str) -> None:
        stop: CallStop | None = self.state.call_stop
        if stop is not None:
            stop.steps += 1
            stop.left -= amount + CHARGE_WEIGHT
            if stop.left <= 0:
                stop.look()
        # What py-evm's own consume_gas does, without the call through it (with the two
        # calls of a separate tick, a third of a cheap opcode loop's time).
        self.get_gas_meter().consume_gas(amount, reason)


class InterruptibleState(LedgerState):
    """The ledger state for read-only calls: its computations can be stopped from outside
    through ``call_stop`` (None: never stopped). Block execution never uses it."""

    computation_class = _InterruptibleComputation
    call_stop: CallStop | None = None


class EvmTransaction:
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
        return f"EvmTransaction(sender={self.sender.hex()}, gas={self.gas})"


def sender_address(tx: Transaction) -> Address:
    """The sender of ``tx``: the last 20 bytes of SM3 of its public key without the 0x04
    prefix. The signature is not checked here."""
    return Address(sm3(tx.public_key[1:])[-ADDRESS_SIZE:])


def contract_address(sender: Address, evm_nonce: int) -> Address:
    """Where a contract created by ``sender`` lives: Ethereum's rule, the last 20 bytes of
    Keccak(RLP([sender, evm_nonce])), with ``evm_nonce`` the sender's EVM nonce before the
    creating transaction. Ethereum clients (ethers' ContractFactory, web3.py, Hardhat test
    suites) compute a deployment's address this way from the transaction's ``from`` and
    ``nonce`` without reading the receipt, so the ledger must place it there."""
    return Address(generate_contract_address(EvmAddress(sender), evm_nonce))


def derive_create_address(sender: Address, nonce: Hash32) -> Address:
    return Address(sm3(CREATE_ADDRESS_PREFIX + sender + nonce)[-ADDRESS_SIZE:])


def intrinsic_gas(tx: Transaction) -> int:
    """The gas a transaction costs before any code runs (base cost, call data, creation);
    a ``gas_limit`` below it makes the transaction inapplicable."""
    view = EvmTransaction(
        sender=Address(bytes(ADDRESS_SIZE)),
        to=tx.to,
        value=tx.value,
        data=tx.data,
        gas=tx.gas_limit,
        nonce=0,
        create_address=None,
    )
    return view.intrinsic_gas


def check_address(value: bytes, what: str, error: type[ChainError]) -> Address:
    if not isinstance(value, bytes) or len(value) != ADDRESS_SIZE:
        raise error(f"{what}: expected a {ADDRESS_SIZE}-byte address")
    return Address(value)


def check_uint(value: int, what: str, error: type[ChainError], limit: int = UINT256_LIMIT) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < limit:
        raise error(f"{what}: expected an integer in [0, {limit})")
    return value


def execution_context(context: BlockContext) -> ExecutionContextAPI:
    proposer = check_address(context.proposer, "BlockContext.proposer", ExecutionError)
    timestamp_ms = check_uint(context.timestamp_ms, "BlockContext.timestamp_ms", ExecutionError)
    return ExecutionContext(
        coinbase=EvmAddress(proposer),
        timestamp=timestamp_ms // 1000,
        block_number=BlockNumber(check_uint(context.height, "BlockContext.height", ExecutionError)),
        difficulty=0,
        mix_hash=EvmHash32(ZERO_HASH),
        gas_limit=check_uint(context.gas_limit, "BlockContext.gas_limit", ExecutionError),
        prev_hashes=(),
        chain_id=check_uint(context.chain_id, "BlockContext.chain_id", ExecutionError),
        base_fee_per_gas=0,
        excess_blob_gas=0,
    )


def open_state(
    reader: KeyValueReader,
    state_root: Hash32,
    context: BlockContext,
    state_class: type[StateAPI] = LedgerState,
) -> tuple[StateAPI, OverlayDB]:
    if not isinstance(state_root, bytes) or len(state_root) != HASH_SIZE:
        raise ExecutionError(f"state root: expected {HASH_SIZE} bytes")
    if state_root != EMPTY_STATE_ROOT and reader.get(state_root) is None:
        raise ExecutionError(f"state root {state_root.hex()} is not in the state store")
    evm_context = execution_context(context)
    overlay = OverlayDB(reader)
    return state_class(AtomicDB(overlay), evm_context, EvmHash32(state_root)), overlay
