"""Executing a block's transactions in order on a parent state: receipts, the new state
root, and the trie nodes to store with the block."""

from __future__ import annotations

from collections.abc import Sequence
from types import MappingProxyType

from eth.abc import ComputationAPI, StateAPI
from eth.constants import CREATE_CONTRACT_ADDRESS
from eth.exceptions import VMError
from eth.vm.forks.cancun import CancunVM
from eth_typing import Address as EvmAddress
from eth_utils.exceptions import ValidationError as EvmValidationError

from chain.errors import ExecutionError
from chain.execution.evm import (
    EvmTransaction,
    check_address,
    check_uint,
    contract_address,
    open_state,
    sender_address,
)
from chain.execution.model import BlockContext, BlockExecution, InapplicableTransaction
from chain.liveness import StorageWrite
from chain.primitives import HASH_SIZE, Address, Hash32
from chain.storage import KeyValueReader
from chain.types import Log, Receipt, Transaction


def _apply(state: StateAPI, view: EvmTransaction) -> tuple[ComputationAPI, int]:
    """Run one transaction on ``state``; return its computation and the gas it used.
    Raises py-evm's ValidationError (before changing anything) if it is not applicable."""
    state.lock_changes()
    computation = state.apply_transaction(view.as_evm())
    return computation, CancunVM.finalize_gas_used(view.as_evm(), computation)


def _receipt(
    tx: Transaction, view: EvmTransaction, computation: ComputationAPI, gas_used: int
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


def execute_block(
    state: KeyValueReader,
    state_root: Hash32,
    context: BlockContext,
    transactions: Sequence[Transaction],
    system_writes: Sequence[StorageWrite] = (),
) -> BlockExecution:
    """Execute ``transactions`` in order on the state at ``state_root``, in one py-evm state
    persisted once at the end. Writes nothing: the new trie nodes and code are returned.

    ``system_writes`` are storage slots the protocol sets before the first transaction (the
    liveness record of :mod:`chain.liveness`); they cost no gas and make no receipt.

    Raises :class:`InapplicableTransaction` (an ExecutionError) if a transaction's chain id
    differs from ``context.chain_id``, its ``gas_limit`` exceeds the gas left in the block or
    is below its intrinsic gas, or its ``value`` exceeds the sender's balance; ExecutionError
    if ``state_root`` is not readable or ``context`` is malformed. Same inputs, same result.
    """
    evm_state, overlay = open_state(state, state_root, context)
    for write in system_writes:
        address = check_address(write.address, "system write address", ExecutionError)
        evm_state.set_storage(
            EvmAddress(address),
            check_uint(write.slot, "system write slot", ExecutionError),
            check_uint(write.value, "system write value", ExecutionError),
        )
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
        evm_nonce = evm_state.get_nonce(EvmAddress(sender))
        view = EvmTransaction(
            sender=sender,
            to=tx.to,
            value=tx.value,
            data=tx.data,
            gas=tx.gas_limit,
            nonce=evm_nonce,
            create_address=contract_address(sender, evm_nonce) if tx.to is None else None,
        )
        if tx.gas_limit < view.intrinsic_gas:
            raise InapplicableTransaction(
                index, tx.hash, f"gas limit {tx.gas_limit} below intrinsic gas {view.intrinsic_gas}"
            )
        try:
            computation, gas_used = _apply(evm_state, view)
        except (EvmValidationError, VMError) as exc:
            # A VM error raised out of py-evm, not recorded in a computation, refuses the
            # transaction itself (init code above EIP-3860's limit).
            raise InapplicableTransaction(index, tx.hash, str(exc)) from exc
        gas_left -= gas_used
        receipts.append(_receipt(tx, view, computation, gas_used))
    evm_state.lock_changes()
    # py-evm reads an account before any change to it (balance, nonce, code, storage,
    # deletion), and its witness lists every account read since the state was opened.
    witness = evm_state.persist()
    return BlockExecution(
        state_root=Hash32(bytes(evm_state.state_root)),
        receipts=tuple(receipts),
        writes=MappingProxyType(overlay.writes),
        accounts_touched=frozenset(Address(bytes(a)) for a in witness.accounts_queried),
    )
