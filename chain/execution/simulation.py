"""Simulated blocks of calls on a state (``eth_simulateV1``): blocks built one after another
on a parent block's state, each with its own block environment and state overrides, each call
seeing what the calls before it left. Nothing is stored: the simulation runs on a py-evm
state of its own over the reader, whose writes are captured in memory and dropped at the end
(:class:`~chain.execution.evm.OverlayDB`), so the ledger's state and every
:class:`~chain.execution.CallState` are untouched whether it returns or raises.

Why a state of its own rather than one snapshot rolled back, as a single call has: between
two transactions py-evm must forget which accounts and slots are warm (EIP-2929) and take the
current storage as the original values that SSTORE prices against (EIP-2200), and it does
both in ``lock_changes``, which folds its journal and so cannot run inside a snapshot. Blocks
run it before every call, as :func:`~chain.execution.execute_block` does, and persist at the
end of each simulated block, so that every call costs what the same transaction would cost
in a block, and every simulated block has a real state root.

What runs is what a block runs (the ledger's executor, with its settlement after each call:
self-destructed accounts deleted, touched empty accounts removed), with these differences:

- Block environment per simulated block: NUMBER, TIMESTAMP, COINBASE, PREVRANDAO, the block
  gas limit, BASEFEE and BLOBBASEFEE come from the block's overrides or their defaults
  (:class:`BlockOverrides`). BLOCKHASH stays 0, as everywhere on this chain.
- Fees: none, whatever BASEFEE reads (gas price 0, no tip, no fee-cap check against the base
  fee): gas is not money here. A call's ``value`` must still be covered by the sender's
  balance.
- A call's EVM nonce is the sender's current one. With ``validation``, a call that names a
  nonce must name exactly that one; without it a named nonce is ignored.
- ``trace_transfers``: every value transfer of a message that moves value (the call itself, a
  CALL with value, a CREATE or CREATE2 endowment; not DELEGATECALL or CALLCODE) is also a log,
  ERC-20's ``Transfer(from, to, value)`` emitted by :data:`TRANSFER_ADDRESS` (ERC-7528), in
  the order it happened among the real logs, and dropped with them when its frame fails. A
  SELFDESTRUCT's balance move is not a message and is not reported.

Bounds, all checked before any call runs: at most :data:`MAX_BLOCKS` simulated blocks
(numbered gaps included), at most :data:`MAX_CALLS` calls, the state overrides of all blocks
together within :mod:`chain.execution.overrides`' bounds for one call. Gas used by all calls
together is at most the caller's ``gas_allowance``; the caller's stop condition is looked at
before every call and inside the EVM as for one call."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from eth.abc import ComputationAPI, MessageAPI, SignedTransactionAPI, TransactionContextAPI
from eth.exceptions import Revert, VMError
from eth.vm.execution_context import ExecutionContext
from eth.vm.forks.cancun import CancunVM
from eth.vm.forks.homestead.validation import validate_homestead_transaction
from eth.vm.forks.shanghai.constants import MAX_INITCODE_SIZE
from eth_typing import Address as EvmAddress
from eth_typing import BlockNumber
from eth_typing import Hash32 as EvmHash32
from eth_utils.crypto import keccak
from eth_utils.exceptions import ValidationError as EvmValidationError

from chain import encoding as enc
from chain.crypto.sm3 import sm3
from chain.errors import ExecutionError
from chain.execution.evm import (
    CallStop,
    EvmTransaction,
    InterruptibleState,
    _InterruptibleComputation,
    check_address,
    check_uint,
    contract_address,
    open_state,
)
from chain.execution.model import (
    BlockContext,
    BlockOverrides,
    BlockStateCalls,
    Refusal,
    SimulatedBlock,
    SimulatedCall,
    SimulatedCallResult,
    SimulationRefused,
)
from chain.execution.overrides import (
    MAX_ACCOUNTS,
    MAX_SLOTS,
    apply_overrides,
    check_overrides,
)
from chain.primitives import HASH_SIZE, ZERO_HASH, Address, Hash32
from chain.storage import KeyValueReader
from chain.types import Log

MAX_BLOCKS = 256
"""Most simulated blocks, counted as the last block's number minus the parent's (blocks that
fill a gap in the numbers count too): geth's bound. Each costs a block environment, a state
root and its part of the answer even when empty."""

MAX_CALLS = 1_000
"""Most calls in one simulation, over all blocks. Gas bounds their work, not their count: a
call of 21,000 gas costs little EVM time but its own result, logs and hashes, and an
allowance of 10M gas admits about 476 of them; 1,000 leaves room for cheaper allowances
raised by a node's operator while bounding the answer to a few MB."""

TIME_STEP_S = 1
"""Default step between a simulated block's TIMESTAMP and its parent's, in seconds: this
chain has no fixed block time (blocks come when transactions do), and a second is the least
step that keeps TIMESTAMP strictly increasing."""

TRANSFER_ADDRESS = Address(bytes.fromhex("ee" * 20))
"""The emitter of the transfer logs of ``trace_transfers`` (ERC-7528's address of the native
currency, as eth_simulateV1 specifies)."""

TRANSFER_TOPIC = Hash32(keccak(b"Transfer(address,address,uint256)"))
"""Topic 0 of a transfer log: ERC-20's ``Transfer`` event."""

BLOCK_HASH_DOMAIN = b"lianxin/simulated-block"
"""Domain prefix of a simulated block's hash (:func:`simulated_block_hash`)."""

CALL_HASH_DOMAIN = b"lianxin/simulated-call"
"""Domain prefix of a simulated call's hash (:func:`simulated_call_hash`)."""

_TRANSFER_TOPIC_INT = int.from_bytes(TRANSFER_TOPIC, "big")
_UINT64_LIMIT = 2**64


def simulated_call_hash(chain_id: int, number: int, index: int, call: SimulatedCall) -> Hash32:
    """SM3 of the RLP list of :data:`CALL_HASH_DOMAIN`, the chain id, the block number, the
    call's index in the block, sender, to (empty for a creation), value, data, gas limit and
    nonce (as it ran). Distinct per position, and never a ledger transaction's hash."""
    return sm3(
        enc.encode(
            [
                CALL_HASH_DOMAIN,
                enc.encode_int(chain_id),
                enc.encode_int(number),
                enc.encode_int(index),
                call.sender,
                b"" if call.to is None else call.to,
                enc.encode_int(call.value),
                call.data,
                enc.encode_int(call.gas or 0),
                enc.encode_int(call.nonce or 0),
            ]
        )
    )


def simulated_block_hash(block: SimulatedBlock) -> Hash32:
    """SM3 of the RLP list of :data:`BLOCK_HASH_DOMAIN`, the parent hash, number, timestamp,
    gas limit, gas used, fee recipient, PREVRANDAO, base fee (0 when not overridden), blob
    base fee, state root, the calls' hashes, and each call's status, gas used, output and
    logs. It commits to the simulated header and everything the calls did, chains to the
    parent, and is never a ledger block's hash (the domain prefix)."""
    return sm3(
        enc.encode(
            [
                BLOCK_HASH_DOMAIN,
                block.parent_hash,
                enc.encode_int(block.number),
                enc.encode_int(block.timestamp),
                enc.encode_int(block.gas_limit),
                enc.encode_int(block.gas_used),
                block.fee_recipient,
                block.prev_randao,
                enc.encode_int(block.base_fee or 0),
                enc.encode_int(block.blob_base_fee),
                block.state_root,
                [result.tx_hash for result in block.calls],
                [
                    [
                        enc.encode_int(int(result.success)),
                        enc.encode_int(result.gas_used),
                        result.output,
                        [log.to_rlp() for log in result.logs],
                    ]
                    for result in block.calls
                ],
            ]
        )
    )


class _SimulationComputation(_InterruptibleComputation):
    """The interruptible ledger computation that, when its state traces transfers, logs the
    value its message moves (see the module docstring) as the message starts: after the
    value moved and before any code runs, so the log sits where the transfer happened among
    the others, and a failed frame drops it with its own logs."""

    def __init__(
        self, state: Any, message: MessageAPI, transaction_context: TransactionContextAPI
    ) -> None:
        super().__init__(state, message, transaction_context)
        if (
            message.value
            and message.should_transfer_value
            and state.trace_transfers
            # CALLCODE moves value from the caller to itself, running other code.
            and (message.is_create or message.code_address == message.storage_address)
        ):
            self.add_log_entry(
                TRANSFER_ADDRESS,
                (
                    _TRANSFER_TOPIC_INT,
                    int.from_bytes(message.sender, "big"),
                    int.from_bytes(message.storage_address, "big"),
                ),
                message.value.to_bytes(32, "big"),
            )


class SimulationState(InterruptibleState):
    """The state a simulation runs on: the ledger's executor (the block's, settlement
    included) on the interruptible computation, with no fee of any kind whatever BASEFEE
    reads, and BLOBBASEFEE settable per block."""

    computation_class = _SimulationComputation
    trace_transfers = False
    """Whether messages that move value log it (:class:`_SimulationComputation`)."""
    blob_base_fee_override: int | None = None
    """BLOBBASEFEE of the running block; None: EIP-4844's value for no excess blob gas."""

    def get_gas_price(self, transaction: SignedTransactionAPI) -> int:
        return 0

    def get_tip(self, transaction: SignedTransactionAPI) -> int:
        return 0

    def validate_transaction(self, transaction: SignedTransactionAPI) -> None:
        """Cancun's checks without the fee cap against the base fee (nothing is charged, so
        a block's base fee may be anything, as geth's simulation without validation has
        it): the sender's balance covers the value, the nonce is the sender's."""
        validate_homestead_transaction(self, transaction)

    @property
    def blob_base_fee(self) -> int:
        override = self.blob_base_fee_override
        return int(super().blob_base_fee) if override is None else override


@dataclass(frozen=True)
class _PlannedBlock:
    number: int
    time: int
    asked: BlockStateCalls


def _check_call(call: SimulatedCall, where: str) -> None:
    if not isinstance(call, SimulatedCall):
        raise ExecutionError(f"{where}: expected a SimulatedCall")
    check_address(call.sender, f"{where}: sender", ExecutionError)
    if call.to is not None:
        check_address(call.to, f"{where}: to", ExecutionError)
    if not isinstance(call.data, bytes):
        raise ExecutionError(f"{where}: data: expected bytes")
    check_uint(call.value, f"{where}: value", ExecutionError)
    if call.gas is not None:
        check_uint(call.gas, f"{where}: gas", ExecutionError, _UINT64_LIMIT)
    if call.nonce is not None:
        check_uint(call.nonce, f"{where}: nonce", ExecutionError, _UINT64_LIMIT)


def _check_overrides(overrides: BlockOverrides, where: str) -> None:
    if not isinstance(overrides, BlockOverrides):
        raise ExecutionError(f"{where}: expected BlockOverrides")
    for name in ("number", "time", "gas_limit"):
        value = getattr(overrides, name)
        if value is not None:
            check_uint(value, f"{where}: {name}", ExecutionError, _UINT64_LIMIT)
    for name in ("base_fee", "blob_base_fee"):
        value = getattr(overrides, name)
        if value is not None:
            check_uint(value, f"{where}: {name}", ExecutionError)
    if overrides.fee_recipient is not None:
        check_address(overrides.fee_recipient, f"{where}: fee_recipient", ExecutionError)
    randao = overrides.prev_randao
    if randao is not None and not (isinstance(randao, bytes) and len(randao) == HASH_SIZE):
        raise ExecutionError(f"{where}: prev_randao: expected {HASH_SIZE} bytes")


def plan(context: BlockContext, blocks: Sequence[BlockStateCalls]) -> list[_PlannedBlock]:
    """Check the whole request and number and time every block, gaps filled with empty
    blocks; raise :class:`SimulationRefused` or ExecutionError before anything runs."""
    if len(blocks) > MAX_BLOCKS:
        raise SimulationRefused(Refusal.CLIENT_LIMIT, f"more than {MAX_BLOCKS} blocks")
    calls = sum(len(block.calls) for block in blocks)
    if calls > MAX_CALLS:
        raise SimulationRefused(Refusal.CLIENT_LIMIT, f"{calls} calls, more than {MAX_CALLS}")
    accounts = slots = 0
    planned: list[_PlannedBlock] = []
    number, time = context.height, context.timestamp_ms // 1000
    for index, block in enumerate(blocks):
        where = f"block {index}"
        if not isinstance(block, BlockStateCalls):
            raise ExecutionError(f"{where}: expected BlockStateCalls")
        _check_overrides(block.overrides, where)
        for position, call in enumerate(block.calls):
            _check_call(call, f"{where} call {position}")
        if block.state_overrides:
            check_overrides(block.state_overrides)
            accounts += len(block.state_overrides)
            slots += sum(
                len(account.state or {}) + len(account.state_diff or {})
                for account in block.state_overrides.values()
            )
        asked_number = block.overrides.number
        if asked_number is None:
            asked_number = number + 1
        elif asked_number <= number:
            raise SimulationRefused(Refusal.BLOCK_NUMBER, f"{where}: {asked_number} <= {number}")
        if asked_number - context.height > MAX_BLOCKS:
            raise SimulationRefused(
                Refusal.CLIENT_LIMIT, f"{where}: more than {MAX_BLOCKS} blocks after the parent"
            )
        for filler in range(number + 1, asked_number):
            time += TIME_STEP_S
            planned.append(_PlannedBlock(filler, time, BlockStateCalls()))
        asked_time = block.overrides.time
        if asked_time is None:
            asked_time = time + TIME_STEP_S
        elif asked_time <= time:
            raise SimulationRefused(Refusal.BLOCK_TIMESTAMP, f"{where}: {asked_time} <= {time}")
        number, time = asked_number, asked_time
        planned.append(_PlannedBlock(number, time, block))
    if accounts > MAX_ACCOUNTS:
        raise ExecutionError(f"state overrides: more than {MAX_ACCOUNTS} accounts in all")
    if slots > MAX_SLOTS:
        raise ExecutionError(f"state overrides: more than {MAX_SLOTS} storage slots in all")
    return planned


class _Simulator:
    """One simulation run: the state, the gas allowance left, the options."""

    def __init__(
        self,
        state: SimulationState,
        context: BlockContext,
        gas_allowance: int,
        validation: bool,
        stop: CallStop | None,
    ) -> None:
        self.state = state
        self.context = context
        self.gas_left = gas_allowance
        self.validation = validation
        self.stop = stop

    def block(self, planned: _PlannedBlock, parent_hash: Hash32) -> SimulatedBlock:
        overrides = planned.asked.overrides
        gas_limit = self.context.gas_limit if overrides.gas_limit is None else overrides.gas_limit
        fee_recipient = overrides.fee_recipient or Address(bytes(20))
        prev_randao = overrides.prev_randao or ZERO_HASH
        state = self.state
        state.execution_context = ExecutionContext(
            coinbase=EvmAddress(fee_recipient),
            timestamp=planned.time,
            block_number=BlockNumber(planned.number),
            difficulty=0,
            mix_hash=EvmHash32(prev_randao),
            gas_limit=gas_limit,
            prev_hashes=(),
            chain_id=self.context.chain_id,
            base_fee_per_gas=overrides.base_fee or 0,
            excess_blob_gas=0,
        )
        state.blob_base_fee_override = overrides.blob_base_fee
        if planned.asked.state_overrides:
            apply_overrides(state, planned.asked.state_overrides)
        results: list[SimulatedCallResult] = []
        gas_used = 0
        for index, call in enumerate(planned.asked.calls):
            result = self.call(planned.number, index, call, gas_limit - gas_used)
            gas_used += result.gas_used
            results.append(result)
        state.lock_changes()
        state.persist()
        block = SimulatedBlock(
            number=planned.number,
            timestamp=planned.time,
            gas_limit=gas_limit,
            gas_used=gas_used,
            fee_recipient=fee_recipient,
            prev_randao=prev_randao,
            base_fee=overrides.base_fee,
            blob_base_fee=int(state.blob_base_fee),
            parent_hash=parent_hash,
            state_root=Hash32(bytes(state.state_root)),
            hash=ZERO_HASH,
            calls=tuple(results),
        )
        return replace(block, hash=simulated_block_hash(block))

    def call(
        self, number: int, index: int, call: SimulatedCall, block_gas_left: int
    ) -> SimulatedCallResult:
        where = f"block {number} call {index}"
        if self.stop is not None:
            self.stop.look()
        state = self.state
        sender = EvmAddress(call.sender)
        nonce = state.get_nonce(sender)
        if self.validation and call.nonce is not None and call.nonce != nonce:
            refusal = Refusal.NONCE_TOO_LOW if call.nonce < nonce else Refusal.NONCE_TOO_HIGH
            raise SimulationRefused(refusal, f"{where}: nonce {call.nonce}, the sender's {nonce}")
        if call.gas is not None and call.gas > block_gas_left:
            raise SimulationRefused(
                Refusal.BLOCK_GAS_LIMIT, f"{where}: gas {call.gas}, {block_gas_left} left in block"
            )
        wanted = block_gas_left if call.gas is None else call.gas
        gas = min(wanted, self.gas_left)
        balance = state.get_balance(sender)
        if call.value > balance:
            raise SimulationRefused(
                Refusal.INSUFFICIENT_FUNDS, f"{where}: value {call.value}, balance {balance}"
            )
        if call.to is None and len(call.data) > MAX_INITCODE_SIZE:
            raise SimulationRefused(
                Refusal.INIT_CODE_SIZE, f"{where}: {len(call.data)} > {MAX_INITCODE_SIZE} bytes"
            )
        view = EvmTransaction(
            sender=call.sender,
            to=call.to,
            value=call.value,
            data=call.data,
            gas=gas,
            nonce=nonce,
            create_address=contract_address(call.sender, nonce) if call.to is None else None,
        )
        if gas < view.intrinsic_gas:
            if wanted >= view.intrinsic_gas:
                raise SimulationRefused(
                    Refusal.CLIENT_LIMIT, f"{where}: the simulation's gas allowance is used up"
                )
            raise SimulationRefused(
                Refusal.INTRINSIC_GAS, f"{where}: gas {gas}, intrinsic gas {view.intrinsic_gas}"
            )
        state.lock_changes()
        try:
            computation: ComputationAPI = state.apply_transaction(view.as_evm())
        except (EvmValidationError, VMError) as exc:
            raise ExecutionError(f"{where}: not applicable: {exc}") from exc
        gas_used = CancunVM.finalize_gas_used(view.as_evm(), computation)
        self.gas_left -= gas_used
        ran = replace(call, gas=gas, nonce=nonce)
        success = bool(computation.is_success)
        error = None if success else computation.error
        return SimulatedCallResult(
            call=ran,
            tx_hash=simulated_call_hash(self.context.chain_id, number, index, ran),
            success=success,
            reverted=isinstance(error, Revert),
            error=None if error is None else (str(error) or type(error).__name__),
            output=bytes(computation.output),
            gas_used=gas_used,
            logs=tuple(
                Log(
                    address=Address(bytes(address)),
                    topics=tuple(Hash32(topic.to_bytes(HASH_SIZE, "big")) for topic in topics),
                    data=bytes(data),
                )
                for address, topics, data in computation.get_log_entries()
            ),
        )


def simulate(
    reader: KeyValueReader,
    state_root: Hash32,
    context: BlockContext,
    *,
    parent_hash: Hash32,
    blocks: Sequence[BlockStateCalls],
    validation: bool = False,
    trace_transfers: bool = False,
    gas_allowance: int = 10_000_000,
    should_stop: Callable[[], bool] | None = None,
) -> tuple[SimulatedBlock, ...]:
    """Run ``blocks`` one after another on the state at ``state_root``, the state after the
    block ``parent_hash`` executing under ``context`` (its number, time, chain id and gas
    limit are the parent's). Returns every simulated block, gap fillers included, in order.

    Raises :class:`SimulationRefused` when the request breaks a bound or a rule (before
    anything runs for the bounds, block numbers and times; for a call's nonce, gas, value or
    init code when that call comes), ExecutionError on malformed inputs or an unreadable
    state root, :class:`~chain.execution.CallInterrupted` once ``should_stop()`` holds.
    Calls together use at most ``gas_allowance`` gas. Nothing is stored either way."""
    check_uint(gas_allowance, "gas_allowance", ExecutionError)
    if not (isinstance(parent_hash, bytes) and len(parent_hash) == HASH_SIZE):
        raise ExecutionError(f"parent_hash: expected {HASH_SIZE} bytes")
    planned = plan(context, blocks)
    evm_state, _ = open_state(reader, state_root, context, SimulationState)
    assert isinstance(evm_state, SimulationState)
    evm_state.trace_transfers = trace_transfers
    stop = None if should_stop is None else CallStop(should_stop)
    evm_state.call_stop = stop
    simulator = _Simulator(evm_state, context, gas_allowance, validation, stop)
    results: list[SimulatedBlock] = []
    for block in planned:
        simulated = simulator.block(block, parent_hash)
        results.append(simulated)
        parent_hash = simulated.hash
    return tuple(results)


__all__ = [
    "BLOCK_HASH_DOMAIN",
    "CALL_HASH_DOMAIN",
    "MAX_BLOCKS",
    "MAX_CALLS",
    "TIME_STEP_S",
    "TRANSFER_ADDRESS",
    "TRANSFER_TOPIC",
    "SimulationState",
    "plan",
    "simulate",
    "simulated_block_hash",
    "simulated_call_hash",
]
