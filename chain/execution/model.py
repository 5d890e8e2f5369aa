"""The values that go in and out of EVM execution: block context, accounts, results, simulated
blocks, and the errors execution raises."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import TYPE_CHECKING

from eth.constants import BLANK_ROOT_HASH, EMPTY_SHA3

from chain.errors import ExecutionError
from chain.primitives import Address, Hash32
from chain.types import Log, Receipt

if TYPE_CHECKING:
    from chain.execution.overrides import StateOverrides

CREATE_ADDRESS_PREFIX = b"lianxin/create"
"""Domain prefix of :func:`contract_address`."""

EMPTY_STATE_ROOT = Hash32(bytes(BLANK_ROOT_HASH))
"""The state root of a state without accounts (Keccak of the RLP empty string)."""

EMPTY_CODE_HASH = Hash32(bytes(EMPTY_SHA3))
"""The code hash of an account without code (Keccak of the empty string)."""


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


class AccessListTooLong(ExecutionError):
    """A call touched more accounts and storage slots than an access list is allowed to
    record (:meth:`~chain.execution.CallState.access_list`); everything it did was rolled
    back."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the call touches more than {limit} accounts and storage slots")
        self.limit = limit
        """The most accounts and slots one access list may record."""


class CallInterrupted(ExecutionError):
    """A read-only call stopped before it finished because its caller's stop condition held
    (a deadline passed); everything it did was rolled back."""

    def __init__(self, steps: int) -> None:
        super().__init__(f"call stopped by its caller after {steps} EVM steps")
        self.steps = steps
        """Gas charges (opcodes, precompiles, memory growth, calls) made before it stopped."""


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
    accounts_touched: frozenset[Address]
    """Every account the block read or wrote (its transactions, the system writes and the
    fees). An account not in it kept its balance, nonce, code and storage: whoever keeps
    something read from one account's state can keep it across a block that left the
    account out."""


@dataclass(frozen=True)
class CallResult:
    """The outcome of a read-only call."""

    success: bool
    """Whether execution completed without revert or exceptional halt."""
    output: bytes
    """Return data, or revert data when ``success`` is false."""
    gas_used: int
    """Gas the call consumed (after refunds), intrinsic gas included."""


@dataclass(frozen=True)
class AccessListEntry:
    """One account of an access list and the storage slots of it that a call touched."""

    address: Address
    """The account."""
    storage_keys: tuple[Hash32, ...]
    """Its touched slots as 32-byte big-endian keys, in the order the call first touched
    them; empty when the call touched only the account (its balance, code or a call to
    it)."""


@dataclass(frozen=True)
class AccessListResult:
    """The outcome of a read-only call run to record what it touches (``eth_createAccessList``):
    the call's own result and the accounts and storage slots it accessed."""

    access_list: tuple[AccessListEntry, ...]
    """The accounts in the order the call first touched them (see
    :meth:`~chain.execution.CallState.access_list` for which are left out)."""
    success: bool
    """Whether execution completed without revert or exceptional halt."""
    output: bytes
    """Return data, or revert data when ``success`` is false."""
    gas_used: int
    """Gas the call consumed (after refunds), intrinsic gas included."""


class Refusal(Enum):
    """Why a simulation is refused as a whole (eth_simulateV1's error kinds)."""

    NONCE_TOO_LOW = "nonce too low"
    NONCE_TOO_HIGH = "nonce too high"
    INTRINSIC_GAS = "gas below intrinsic gas"
    INSUFFICIENT_FUNDS = "insufficient funds for value"
    BLOCK_GAS_LIMIT = "block gas limit reached"
    BLOCK_NUMBER = "block numbers must increase"
    BLOCK_TIMESTAMP = "block timestamps must increase"
    INIT_CODE_SIZE = "init code too large"
    CLIENT_LIMIT = "simulation limit exceeded"


class SimulationRefused(ExecutionError):
    """The simulation cannot run as asked; nothing of it is answered or kept."""

    def __init__(self, refusal: Refusal, detail: str) -> None:
        super().__init__(f"{refusal.value}: {detail}")
        self.refusal = refusal
        """Which rule the request breaks."""
        self.detail = detail
        """Where and by how much."""


@dataclass(frozen=True)
class BlockOverrides:
    """What a simulated block's environment is; None takes the default."""

    number: int | None = None
    """NUMBER; default the parent's + 1. Must exceed the parent's; a gap is filled with
    empty blocks."""
    time: int | None = None
    """TIMESTAMP in seconds; default the parent's +
    :data:`~chain.execution.simulation.TIME_STEP_S`. Must exceed the parent's."""
    gas_limit: int | None = None
    """The block gas limit; default the base block's."""
    fee_recipient: Address | None = None
    """COINBASE; default the zero address (as the spec says)."""
    prev_randao: Hash32 | None = None
    """PREVRANDAO; default zero."""
    base_fee: int | None = None
    """BASEFEE; default 0, as in every block here. Charges nothing (see
    :mod:`chain.execution.simulation`)."""
    blob_base_fee: int | None = None
    """BLOBBASEFEE; default EIP-4844's least, 1 (no blob is ever carried)."""


@dataclass(frozen=True)
class SimulatedCall:
    """One call of a simulated block."""

    sender: Address
    to: Address | None
    """None: ``data`` is init code."""
    data: bytes = b""
    value: int = 0
    gas: int | None = None
    """Gas limit; None: what is left of the block's gas limit (within the allowance)."""
    nonce: int | None = None
    """The EVM nonce the call claims; checked only with ``validation``."""


@dataclass(frozen=True)
class BlockStateCalls:
    """One simulated block as asked: its environment, state overrides and calls."""

    overrides: BlockOverrides = field(default_factory=BlockOverrides)
    state_overrides: StateOverrides | None = None
    """Applied before the block's first call; they last for the rest of the simulation."""
    calls: Sequence[SimulatedCall] = ()


@dataclass(frozen=True)
class SimulatedCallResult:
    """The outcome of one simulated call."""

    call: SimulatedCall
    """The call as it ran: ``gas`` the limit it was given, ``nonce`` the EVM nonce used."""
    tx_hash: Hash32
    """Its hash (:func:`~chain.execution.simulation.simulated_call_hash`)."""
    success: bool
    reverted: bool
    """Whether it failed by REVERT (the output is then the revert data)."""
    error: str | None
    """What stopped a failed call (py-evm's error), None when it succeeded."""
    output: bytes
    gas_used: int
    """Gas used after refunds, intrinsic gas included."""
    logs: tuple[Log, ...]
    """Its logs (transfer logs among them with ``trace_transfers``); none when it failed."""


@dataclass(frozen=True)
class SimulatedBlock:
    """One simulated block and the outcome of its calls."""

    number: int
    timestamp: int
    """In seconds."""
    gas_limit: int
    gas_used: int
    fee_recipient: Address
    prev_randao: Hash32
    base_fee: int | None
    """BASEFEE if overridden; None: not overridden, and BASEFEE read 0."""
    blob_base_fee: int
    parent_hash: Hash32
    state_root: Hash32
    """The state root after the block's calls."""
    hash: Hash32
    """:func:`~chain.execution.simulation.simulated_block_hash`."""
    calls: tuple[SimulatedCallResult, ...]
