"""Read-only calls (``eth_call``), gas estimation (``eth_estimateGas``) and access lists
(``eth_createAccessList``) on a state: every change a call makes is rolled back. A caller may
pass a stop condition (``should_stop``, e.g. "the deadline has passed"); it is looked at every
few hundred EVM steps, and once it holds the call raises :class:`CallInterrupted` and its work
is dropped. ``chain`` has no clock: the condition comes from the caller. Calls run on
:class:`ReadOnlyCallExecutor`, which leaves out what only settles a transaction after its
computation (every call is rolled back anyway)."""

from __future__ import annotations

from collections.abc import Callable, Container
from typing import cast

from eth._utils.address import generate_contract_address
from eth.abc import ComputationAPI, SignedTransactionAPI
from eth.constants import CREATE_CONTRACT_ADDRESS
from eth.exceptions import VMError
from eth.vm.forks.cancun import CancunVM
from eth.vm.message import Message
from eth_typing import Address as EvmAddress
from eth_utils.exceptions import ValidationError as EvmValidationError

from chain.errors import ExecutionError
from chain.execution.evm import (
    CallStop,
    EvmTransaction,
    InterruptibleState,
    LedgerTransactionExecutor,
    check_address,
    check_uint,
    derive_create_address,
    open_state,
)
from chain.execution.model import (
    AccessListEntry,
    AccessListResult,
    AccessListTooLong,
    BlockContext,
    CallInterrupted,
    CallResult,
    CallReverted,
)
from chain.execution.overrides import StateOverrides, apply_overrides, check_overrides
from chain.primitives import ZERO_HASH, Address, Hash32
from chain.storage import KeyValueReader


class ReadOnlyCallExecutor(LedgerTransactionExecutor):
    """The ledger's executor for a call whose every change is rolled back: the same
    validation, message and computation, without the work that only changes the state after
    the computation has ended (the refund to the sender, the coinbase's fee, the deletion of
    touched empty accounts), which the rollback undoes and nothing in the answer reads, and
    without formatting py-evm's debug line of every transaction (a Keccak of the call data
    and the hex of the whole code) whether or not that level is logged. The answer (output,
    success, gas used with its refunds, every error) is the one the ledger's own executor
    gives: ``tests/chain/test_call_executor.py`` runs both side by side."""

    def build_evm_message(self, transaction: SignedTransactionAPI) -> Message:
        state = self.vm_state
        sender = transaction.sender
        gas_fee = transaction.gas * state.get_gas_price(transaction)
        if gas_fee:
            # Zero for every call (gas price and base fee are 0); debiting zero would
            # rewrite the sender's account with the balance it has.
            state.delta_balance(sender, -gas_fee)
        state.increment_nonce(sender)
        create_address: EvmAddress | None = None
        if transaction.to == CREATE_CONTRACT_ADDRESS:
            ledger_address = cast(EvmTransaction, transaction).create_address
            create_address = (
                generate_contract_address(sender, state.get_nonce(sender) - 1)
                if ledger_address is None
                else EvmAddress(ledger_address)
            )
            data, code = b"", transaction.data
        else:
            data, code = transaction.data, state.get_code(transaction.to)
        return Message(
            gas=transaction.gas - transaction.intrinsic_gas,
            to=transaction.to,
            sender=sender,
            value=transaction.value,
            data=data,
            code=code,
            create_address=create_address,  # type: ignore[arg-type]  # py-evm: Optional
        )

    def finalize_computation(
        self, transaction: SignedTransactionAPI, computation: ComputationAPI
    ) -> ComputationAPI:
        """Nothing to settle: the caller rolls the state back (see the class docstring).
        Since London no refund depends on this step, so the gas used is unchanged."""
        return computation


MAX_ACCESS_LIST_ENTRIES = 1 << 16
"""The most accounts and storage slots, together, that one access list records before the
call is refused with :class:`AccessListTooLong` (a JSON answer of a few MB at most). Gas
alone bounds the list too loosely: a slot or account first touched and paid for costs a cold
access (2,100 or 2,600 gas), so an ordinary call with 30M gas touches at most about 15,000,
but an access is recorded before its gas is charged, and a contract can make a child call
with a few gas that touches one new account and runs out of gas at once, for about 150 gas
per account (about 65,000 with 10M gas)."""


class AccessRecorder:
    """The accounts and storage slots one call touches, each recorded once, in the order
    first touched; raises :class:`AccessListTooLong` past ``limit`` of them together."""

    __slots__ = ("limit", "size", "touched")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        """The most accounts and slots recorded."""
        self.size = 0
        """Accounts and slots recorded so far."""
        self.touched: dict[bytes, dict[int, None]] = {}
        """Account → its touched slots (dicts keep the order of insertion)."""

    def account(self, address: bytes) -> dict[int, None]:
        """Record an access to ``address``; its slots recorded so far."""
        slots = self.touched.get(address)
        if slots is None:
            self._grow()
            slots = self.touched[address] = {}
        return slots

    def slot(self, address: bytes, slot: int) -> None:
        """Record an access to storage slot ``slot`` of ``address`` (and so to the account)."""
        slots = self.account(address)
        if slot not in slots:
            self._grow()
            slots[slot] = None

    def _grow(self) -> None:
        self.size += 1
        if self.size > self.limit:
            raise AccessListTooLong(self.limit)

    def entries(self, excluded: Container[bytes]) -> tuple[AccessListEntry, ...]:
        """The access list: every account recorded with its slots, except the accounts in
        ``excluded`` of which no slot was touched."""
        return tuple(
            AccessListEntry(
                Address(address), tuple(Hash32(slot.to_bytes(32, "big")) for slot in slots)
            )
            for address, slots in self.touched.items()
            if slots or address not in excluded
        )


class CallExecutionState(InterruptibleState):
    """The interruptible ledger state with :class:`ReadOnlyCallExecutor`: only for calls
    whose changes are rolled back. With ``access_recorder`` set it records what the call
    touches, where py-evm's EIP-2929 rules look at it (None, the rest of the time, costs a
    test per account access and per cold slot):

    - accounts in ``is_address_warm``, which the opcodes that access an account ask before
      charging for it, warm or cold: BALANCE, EXTCODESIZE, EXTCODECOPY, EXTCODEHASH, the
      target of CALL, CALLCODE, DELEGATECALL and STATICCALL, and SELFDESTRUCT's beneficiary
      (geth's tracer takes these same opcodes). Not ``mark_address_warm``: the transaction
      marks its sender, its target (or the account it creates) and the coinbase warm before
      any code runs, and CREATE and CREATE2 the account they make, none of which is an access
      by code; and the coinbase read by BALANCE, being warm already, is never marked again.
    - slots in ``mark_storage_warm``, which SLOAD and SSTORE call on the first (cold) touch
      of a slot of the executing storage account (again after the frame that first touched
      it reverted). No slot is warm before that: transactions here carry no access list."""

    transaction_executor_class = ReadOnlyCallExecutor
    access_recorder: AccessRecorder | None = None
    """Where the running call records what it touches (None: nothing is recorded)."""

    def is_address_warm(self, address: EvmAddress) -> bool:
        recorder = self.access_recorder
        if recorder is not None:
            recorder.account(address)
        return super().is_address_warm(address)

    def mark_storage_warm(self, address: EvmAddress, slot: int) -> None:
        recorder = self.access_recorder
        if recorder is not None:
            recorder.slot(address, slot)
        super().mark_storage_warm(address, slot)


class CallState:
    """The state at one state root under one block context, opened once and reused by many
    read-only calls: every call's changes are rolled back afterwards, so each call sees the
    state exactly as a freshly opened one would, while the trie nodes that earlier calls read
    stay in py-evm's trie cache (its decoded accounts do not: a rollback empties that cache).
    Not safe to share between threads; give each thread its own."""

    state_class: type[InterruptibleState] = CallExecutionState
    """The py-evm state the calls run on."""

    def __init__(self, reader: KeyValueReader, state_root: Hash32, context: BlockContext) -> None:
        """Open the state; raises ExecutionError when ``state_root`` is not readable or
        ``context`` is malformed."""
        self.state_root = state_root
        """The state root every call runs on."""
        self.context = context
        """The block context every call runs in."""
        self._state, _ = open_state(reader, state_root, context, self.state_class)

    def _run(
        self,
        sender: Address,
        to: Address | None,
        data: bytes,
        gas: int,
        value: int,
        stop: CallStop | None,
        overrides: StateOverrides | None = None,
        recorder: AccessRecorder | None = None,
    ) -> tuple[ComputationAPI, int]:
        check_address(sender, "sender", ExecutionError)
        if to is not None:
            check_address(to, "to", ExecutionError)
        if not isinstance(data, bytes):
            raise ExecutionError("data: expected bytes")
        check_uint(gas, "gas", ExecutionError, 2**64)
        check_uint(value, "value", ExecutionError)
        if overrides:
            check_overrides(overrides)
        evm_state = self._state
        snapshot = evm_state.snapshot()
        evm_state.call_stop = stop  # type: ignore[attr-defined]
        evm_state.access_recorder = recorder  # type: ignore[attr-defined]
        try:
            if overrides:
                apply_overrides(evm_state, overrides)
            view = EvmTransaction(
                sender=sender,
                to=to,
                value=value,
                data=data,
                gas=gas,
                nonce=evm_state.get_nonce(EvmAddress(sender)),
                create_address=derive_create_address(sender, ZERO_HASH) if to is None else None,
            )
            if gas < view.intrinsic_gas:
                raise ExecutionError(f"gas {gas} below intrinsic gas {view.intrinsic_gas}")
            computation = evm_state.apply_transaction(view.as_evm())
            return computation, CancunVM.finalize_gas_used(view.as_evm(), computation)
        except (EvmValidationError, VMError) as exc:
            # A VM error raised out of py-evm, not recorded in a computation, refuses the
            # message itself (init code above EIP-3860's limit).
            raise ExecutionError(f"call not applicable: {exc}") from exc
        finally:
            evm_state.call_stop = None  # type: ignore[attr-defined]
            evm_state.access_recorder = None  # type: ignore[attr-defined]
            evm_state.revert(snapshot)

    def call(
        self,
        *,
        sender: Address,
        to: Address | None,
        data: bytes,
        gas: int = 10_000_000,
        value: int = 0,
        should_stop: Callable[[], bool] | None = None,
        overrides: StateOverrides | None = None,
    ) -> CallResult:
        """As :func:`call`, on this state."""
        stop = None if should_stop is None else CallStop(should_stop)
        computation, gas_used = self._run(sender, to, data, gas, value, stop, overrides)
        return CallResult(
            success=bool(computation.is_success),
            output=bytes(computation.output),
            gas_used=gas_used,
        )

    def access_list(
        self,
        *,
        sender: Address,
        to: Address | None,
        data: bytes,
        gas: int = 10_000_000,
        value: int = 0,
        should_stop: Callable[[], bool] | None = None,
        overrides: StateOverrides | None = None,
        max_entries: int = MAX_ACCESS_LIST_ENTRIES,
    ) -> AccessListResult:
        """Run the call once, as :meth:`call` does, and record the accounts and storage slots
        it touches (geth's ``eth_createAccessList``): every account whose balance or code it
        read or that it called, and every slot it read or wrote, frames that reverted
        included, in the order first touched (see :class:`CallExecutionState`). Left out,
        as geth's tracer leaves them out, unless a slot of theirs was touched: ``sender``,
        ``to`` (or the account a creation makes) and the precompiles. The coinbase, warm
        from the start, is there only when code accessed it. Raises
        :class:`AccessListTooLong` once more than ``max_entries`` accounts and slots are
        recorded, and as :meth:`call` raises otherwise; a revert is a result."""
        check_uint(max_entries, "max_entries", ExecutionError)
        state = self._state
        if not isinstance(state, CallExecutionState):
            raise ExecutionError("access lists need state_class to be a CallExecutionState")
        stop = None if should_stop is None else CallStop(should_stop)
        recorder = AccessRecorder(max_entries)
        computation, gas_used = self._run(sender, to, data, gas, value, stop, overrides, recorder)
        excluded = {
            sender,
            computation.msg.storage_address,
            *state.computation_class.get_precompiles(),
        }
        return AccessListResult(
            access_list=recorder.entries(excluded),
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
        should_stop: Callable[[], bool] | None = None,
        overrides: StateOverrides | None = None,
    ) -> int:
        """As :func:`estimate_gas`, on this state."""
        # One condition for the whole search: the deadline bounds the estimate, not each run.
        stop = None if should_stop is None else CallStop(should_stop)

        def succeeds(limit: int) -> tuple[bool, ComputationAPI]:
            computation, _ = self._run(sender, to, data, limit, value, stop, overrides)
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
            except CallInterrupted:
                raise
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
    should_stop: Callable[[], bool] | None = None,
    overrides: StateOverrides | None = None,
) -> CallResult:
    """Execute a message call (``eth_call``) on the state at ``state_root`` and discard every
    change. With ``to=None``, ``data`` runs as init code. ``overrides`` are what chosen
    accounts hold for the call (:mod:`chain.execution.overrides`). Raises ExecutionError on
    malformed inputs or overrides, ``gas`` below the intrinsic gas, or ``value`` above the
    sender's balance; a revert is a result (``success=False``), not an error; raises
    :class:`CallInterrupted` once ``should_stop()`` returns true (see the module docstring)."""
    return CallState(state, state_root, context).call(
        sender=sender,
        to=to,
        data=data,
        gas=gas,
        value=value,
        should_stop=should_stop,
        overrides=overrides,
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
    should_stop: Callable[[], bool] | None = None,
    overrides: StateOverrides | None = None,
) -> int:
    """The smallest gas limit (at most ``gas``) with which the call succeeds on the state at
    ``state_root`` (under ``overrides``, as :func:`call`). Raises :class:`CallReverted` if it
    fails even with ``gas``, and ExecutionError on malformed inputs as :func:`call` does."""
    return CallState(state, state_root, context).estimate_gas(
        sender=sender,
        to=to,
        data=data,
        gas=gas,
        value=value,
        should_stop=should_stop,
        overrides=overrides,
    )
