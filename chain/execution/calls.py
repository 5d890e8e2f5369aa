"""Read-only calls (``eth_call``) and gas estimation (``eth_estimateGas``) on a state: every
change a call makes is rolled back. A caller may pass a stop condition (``should_stop``, e.g.
"the deadline has passed"); it is looked at every few hundred EVM steps, and once it holds
the call raises :class:`CallInterrupted` and its work is dropped. ``chain`` has no clock: the
condition comes from the caller. Calls run on :class:`ReadOnlyCallExecutor`, which leaves out
what only settles a transaction after its computation (every call is rolled back anyway)."""

from __future__ import annotations

from collections.abc import Callable
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
from chain.execution.model import BlockContext, CallInterrupted, CallResult, CallReverted
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


class CallExecutionState(InterruptibleState):
    """The interruptible ledger state with :class:`ReadOnlyCallExecutor`: only for calls
    whose changes are rolled back."""

    transaction_executor_class = ReadOnlyCallExecutor


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
