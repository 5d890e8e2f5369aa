"""The read-only call executor answers exactly as the ledger's own executor: every call of
``tests/vectors/read_only_calls.json`` (value transfers, creation, self-destruct, refunds,
transient storage, a contract creating from its own nonce, errors) and random programs over
the opcodes that read what a transaction changes around the computation (the sender's nonce,
existence and balance, the coinbase, warm and cold accounts) give the same output, success,
gas used, or the same error, one call after another on one state."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from eth_utils.abi import function_signature_to_4byte_selector
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.errors import ExecutionError
from chain.execution import AccountAlloc, BlockContext, CallState, genesis_state
from chain.execution.calls import CallExecutionState, ReadOnlyCallExecutor
from chain.execution.evm import InterruptibleState
from chain.primitives import Address
from contracts.artifacts import load_artifact

VECTOR = Path(__file__).resolve().parent.parent / "vectors" / "read_only_calls.json"
CASES: dict[str, Any] = json.loads(VECTOR.read_text(encoding="utf-8"))
ANCHOR = Address(bytes.fromhex("00000000000000000000000000000000000c00a0"))
ABSENT = Address(bytes.fromhex("00000000000000000000000000000000000c0dea"))
PROPOSER = Address(bytes.fromhex(CASES["proposer"]))
ZERO = Address(bytes(20))
INIT_CODE_LIMIT = 49_152
"""EIP-3860: the longest init code a creating transaction may carry."""


class LedgerExecutorCallState(CallState):
    """Calls on the ledger's own executor (the one blocks use), rolled back the same way."""

    state_class = InterruptibleState


def _address(name: str) -> Address:
    return Address(bytes.fromhex(CASES["accounts"][name]["address"]))


def _states() -> tuple[CallState, CallState]:
    alloc = {
        _address(name): AccountAlloc(
            balance=account.get("balance", 0),
            code=bytes.fromhex(account.get("code", "").replace(" ", "")),
            storage={int(slot): value for slot, value in account.get("storage", {}).items()},
        )
        for name, account in CASES["accounts"].items()
    }
    alloc[ANCHOR] = AccountAlloc(
        code=load_artifact("Anchor").deployed_bytecode, storage={0: 5, 1: 7}
    )
    alloc[PROPOSER] = AccountAlloc(balance=1)
    update = genesis_state(alloc)
    context = BlockContext(chain_id=7, height=3, timestamp_ms=1_700_000_000_000, proposer=PROPOSER)
    reader = dict(update.writes)
    return (
        CallState(reader, update.state_root, context),
        LedgerExecutorCallState(reader, update.state_root, context),
    )


def _named(name: str | None) -> Address | None:
    if name is None:
        return None
    special = {"zero": ZERO, "proposer": PROPOSER, "absent": ABSENT, "anchor": ANCHOR}
    return special.get(name) or _address(name)


def _data(name: str | None) -> bytes:
    if name is None:
        return b""
    if name == "total":
        return function_signature_to_4byte_selector("total()")
    if name == "oversize":
        return bytes(INIT_CODE_LIMIT + 1)
    return bytes.fromhex(CASES["accounts"][name]["code"].replace(" ", ""))


def _outcome(state: CallState, call: dict[str, Any]) -> Any:
    try:
        return state.call(**call)
    except ExecutionError as exc:
        return (type(exc), str(exc))


def _vector_calls() -> Iterator[tuple[str, dict[str, Any]]]:
    for case in CASES["calls"]:
        call = {
            "sender": _named(case["sender"]),
            "to": _named(case["to"]),
            "data": _data(case.get("data")),
            "value": case.get("value", 0),
        }
        if "gas" in case:
            call["gas"] = case["gas"]
        yield case["name"], call


def test_calls_run_on_the_read_only_executor() -> None:
    state, _ = _states()
    assert state.state_class is CallExecutionState
    assert CallExecutionState.transaction_executor_class is ReadOnlyCallExecutor


def test_every_vector_call_answers_as_on_the_ledger_executor() -> None:
    fast, reference = _states()
    outcomes = []
    for name, call in _vector_calls():
        expected = _outcome(reference, call)
        assert _outcome(fast, call) == expected, name
        outcomes.append(expected)
    # The vector reaches what it is meant to: successes, failures and refused calls.
    assert any(getattr(o, "success", False) for o in outcomes)
    assert any(getattr(o, "success", True) is False for o in outcomes)
    assert any(isinstance(o, tuple) for o in outcomes)


_READS = [
    "333f",  # EXTCODEHASH(CALLER)
    "323f",  # EXTCODEHASH(ORIGIN)
    "413f",  # EXTCODEHASH(COINBASE)
    "303f",  # EXTCODEHASH(ADDRESS)
    "333b",  # EXTCODESIZE(CALLER)
    "3331",  # BALANCE(CALLER)
    "4131",  # BALANCE(COINBASE)
    "47",  # SELFBALANCE
    "5a",  # GAS
    "600054",  # SLOAD(0)
    "60005c",  # TLOAD(0)
    "600060006000f0",  # CREATE(0, 0, 0)
    "60006000600060006001335af1",  # CALL(GAS, CALLER, 1 wei, no data)
    "6000600060006000600041 5af1",  # CALL(GAS, COINBASE, 0, no data)
]
"""Snippets that each push one word read from what a transaction changes around its
computation (the sender's nonce, existence and balance, the coinbase, warm and cold
accounts, the gas left)."""
_WRITES = [
    "6001600055",  # SSTORE(0, 1)
    "600060005d",  # TSTORE(0, 0)
    "600160005d",  # TSTORE(0, 1)
]


def _program(snippets: list[str]) -> bytes:
    """The snippets in order, each pushed word stored in the next memory word; returns the
    memory written."""
    code, words = "", 0
    for snippet in snippets:
        code += snippet.replace(" ", "")
        if snippet not in _WRITES:
            code += f"61{words * 32:04x}52"  # PUSH2 offset; MSTORE
            words += 1
    return bytes.fromhex(code + f"61{words * 32:04x}6000f3")  # RETURN(0, words * 32)


@settings(max_examples=150, deadline=None)
@given(
    program=st.lists(st.sampled_from(_READS + _WRITES), max_size=12),
    sender=st.sampled_from(["zero", "funded", "proposer", "probe", "factory"]),
    value=st.sampled_from([0, 1]),
    create=st.booleans(),
)
def test_random_programs_answer_as_on_the_ledger_executor(
    program: list[str], sender: str, value: int, create: bool
) -> None:
    fast, reference = _states()
    code = _program(program)
    target = ABSENT if not create else None
    if not create:
        # The program as the code of a fresh account, through a state holding it.
        alloc = {ABSENT: AccountAlloc(code=code), _address("funded"): AccountAlloc(balance=10)}
        alloc[PROPOSER] = AccountAlloc(balance=1)
        update = genesis_state(alloc)
        context = BlockContext(chain_id=7, height=3, timestamp_ms=0, proposer=PROPOSER)
        fast = CallState(dict(update.writes), update.state_root, context)
        reference = LedgerExecutorCallState(dict(update.writes), update.state_root, context)
    call = {
        "sender": _named(sender),
        "to": target,
        "data": code if create else b"",
        "value": value,
        "gas": 1_000_000,
    }
    for _ in range(2):
        assert _outcome(fast, call) == _outcome(reference, call)
