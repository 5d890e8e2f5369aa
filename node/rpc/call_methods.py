"""``eth_call``, ``eth_estimateGas`` and ``eth_createAccessList``: EVM execution on a block's
state, on the reader pool.

Two bounds keep one request from holding a reader thread for long: the gas allowance is at
most ``gas_cap``, and the wall clock at most ``call_timeout_ms`` from the request's arrival
(queueing included). The EVM looks at the deadline every 256 steps or 20,000 gas, whichever
comes first (:class:`chain.execution.CallInterrupted`); past it the call is stopped, its
changes rolled back, its thread freed, and the client gets -32007. What cannot be stopped is
one precompile call already running: its gas bounds it (the slow ones carry a surcharge, see
:mod:`chain.execution.precompiles`), so the deadline may be overrun by at most one such call,
itself no longer than about ``gas_cap`` worth of ordinary execution.

Short calls run on the event loop: most ``eth_call`` requests are view functions of a few
hundred EVM steps, for which handing the work to a reader thread and back (two thread
switches and the GIL changing hands twice) cost more than the call itself. A call first runs
on the loop under an inline budget, stopped at the EVM's first look at its stop condition
(after at most :data:`~chain.execution.evm.INTERRUPT_CHECK_CHARGES` gas charges or
:data:`~chain.execution.evm.INTERRUPT_CHECK_GAS` gas, both counted down together, before the
work of the charge that ended the countdown); a call stopped there has its changes rolled
back and runs again, from the start, on the reader pool under the request's deadline. So the
loop is never held longer than that budget by one request, and a long call costs at most that
budget twice. ``eth_estimateGas`` and ``eth_createAccessList`` run on the reader pool from the
start."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from chain.errors import ExecutionError
from chain.execution import (
    AccessListResult,
    AccessListTooLong,
    AccountOverride,
    CallInterrupted,
    CallReverted,
    CallState,
)
from chain.execution.overrides import MAX_ACCOUNTS, MAX_CODE_BYTES, MAX_SLOTS
from chain.primitives import Address, Hash32
from chain.types import Header
from node.rpc import format as fmt
from node.rpc import params as p
from node.rpc.context import RpcContext
from node.rpc.errors import ErrorCode, InvalidParams, LimitExceeded, RpcError

ERROR_SELECTOR = bytes.fromhex("08c379a0")
"""The selector of Solidity's ``Error(string)``, what ``revert("reason")`` and ``require``
return."""


def revert_reason(output: bytes) -> str | None:
    """The reason string of revert data that ABI-encodes ``Error(string)``, or None for any
    other revert data (a custom error, a panic, nothing, or a malformed encoding)."""
    body = output[4:]
    if output[:4] != ERROR_SELECTOR or len(body) < 64:
        return None
    offset = int.from_bytes(body[:32], "big")
    if offset > len(body) - 32:
        return None
    length = int.from_bytes(body[offset : offset + 32], "big")
    start = offset + 32
    if length > len(body) - start:
        return None
    try:
        return body[start : start + length].decode("utf-8")
    except UnicodeDecodeError:
        return None


def revert_message(output: bytes) -> str:
    """``execution reverted``, with ``: <reason>`` when ``output`` carries a reason string."""
    reason = revert_reason(output)
    return "execution reverted" if reason is None else f"execution reverted: {reason}"


def reverted(output: bytes) -> RpcError:
    """Error 3 for a reverted call, the revert data in ``data``; a reason string is also put
    in the message, ``execution reverted: <reason>``, as geth and anvil answer (clients such
    as web3.py show the message)."""
    return RpcError(ErrorCode.EXECUTION_REVERTED, revert_message(output), fmt.data(output))


OVERRIDE_FIELDS = ("balance", "nonce", "code", "state", "stateDiff")
"""What one account's state override may set (geth's ``OverrideAccount``), in the order
:class:`AccountOverride` takes them."""


def _slots(value: Any, field: str) -> dict[bytes, bytes]:
    if not isinstance(value, dict):
        raise InvalidParams(f"{field}: expected an object of 32-byte slots")
    if len(value) > MAX_SLOTS:
        raise InvalidParams(f"{field}: more than {MAX_SLOTS} slots")
    return {
        p.hash32(slot, f"{field} slot"): p.hash32(word, f"{field} value")
        for slot, word in value.items()
    }


def state_overrides(value: Any) -> dict[Address, AccountOverride] | None:
    """geth's third parameter of eth_call and eth_estimateGas: address → what that account
    holds for the call (``balance``, ``nonce``, ``code``, and ``state`` or ``stateDiff``);
    ``null`` is none. Bounded before it is read (:mod:`chain.execution.overrides`)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidParams("state overrides: expected an object keyed by address")
    if len(value) > MAX_ACCOUNTS:
        raise InvalidParams(f"state overrides: more than {MAX_ACCOUNTS} accounts")
    overrides: dict[Address, AccountOverride] = {}
    for key, account in value.items():
        address = p.address(key, "state override address")
        field = f"state override of {key}"
        if not isinstance(account, dict):
            raise InvalidParams(f"{field}: expected an object")
        unknown = set(account) - set(OVERRIDE_FIELDS)
        if unknown:
            raise InvalidParams(f"{field}: unsupported fields {sorted(unknown)}")
        # state with stateDiff is refused where every override is checked
        # (chain.execution.overrides.check_overrides), as -32602 too.
        balance, nonce, code, state, diff = (account.get(name) for name in OVERRIDE_FIELDS)
        overrides[address] = AccountOverride(
            balance=None if balance is None else p.quantity(balance, f"{field}.balance"),
            nonce=None if nonce is None else p.quantity(nonce, f"{field}.nonce", p.MAX_UINT64),
            code=None if code is None else p.data(code, f"{field}.code", MAX_CODE_BYTES),
            state=None if state is None else _slots(state, f"{field}.state"),
            state_diff=None if diff is None else _slots(diff, f"{field}.stateDiff"),
        )
    return overrides


def _beyond_inline_budget() -> bool:
    """The stop condition of a call's run on the event loop: asked once the call has made at
    most INTERRUPT_CHECK_CHARGES gas charges or spent INTERRUPT_CHECK_GAS gas, it stops it."""
    return True


def access_list_json(result: AccessListResult) -> dict[str, Any]:
    """geth's answer to eth_createAccessList: ``accessList`` (each account as lowercase hex
    with its ``storageKeys`` as 32-byte hex), ``gasUsed``, and ``error`` when the call
    failed, with the message a failing eth_call answers (:func:`revert_message`)."""
    answer: dict[str, Any] = {
        "accessList": [
            {
                "address": fmt.data(entry.address),
                "storageKeys": [fmt.data(key) for key in entry.storage_keys],
            }
            for entry in result.access_list
        ],
        "gasUsed": fmt.quantity(result.gas_used),
    }
    if not result.success:
        answer["error"] = revert_message(result.output)
    return answer


class CallMethods:
    """Read-only calls, gas estimation and access lists."""

    def __init__(self, ctx: RpcContext) -> None:
        self.ctx = ctx
        # Each reader thread keeps the state of the block its last call ran on (see
        # _call_state): consecutive calls at the same head reuse its decoded trie reads.
        self._call_states = threading.local()

    def _call_args(self, value: Any) -> dict[str, Any]:
        call = p.optional_object(value, "transaction")
        unknown = set(call) - {
            "from",
            "to",
            "gas",
            "gasPrice",
            "maxFeePerGas",
            "maxPriorityFeePerGas",
            "value",
            "data",
            "input",
            "nonce",
            "chainId",
            "type",
            "accessList",
        }
        if unknown:
            raise InvalidParams(f"transaction: unknown fields {sorted(unknown)}")
        if "data" in call and "input" in call and call["data"] != call["input"]:
            raise InvalidParams("transaction: data and input differ")
        payload = call.get("input", call.get("data"))
        gas = self.ctx.config.gas_cap
        if call.get("gas") is not None:
            gas = min(p.quantity(call["gas"], "transaction.gas", p.MAX_UINT64), gas)
        return {
            "sender": (
                Address(bytes(20))
                if call.get("from") is None
                else p.address(call["from"], "transaction.from")
            ),
            "to": None if call.get("to") is None else p.address(call["to"], "transaction.to"),
            "data": b"" if payload is None else p.data(payload, "transaction.data", 1 << 20),
            "gas": gas,
            "value": 0 if call.get("value") is None else p.quantity(call["value"], "value"),
        }

    def _deadline(self) -> Callable[[], bool]:
        """The stop condition of a call arriving now: true once ``call_timeout_ms`` passed."""
        deadline = time.monotonic() + self.ctx.config.call_timeout_ms / 1000
        return lambda: time.monotonic() >= deadline

    def _timeout(self, exc: CallInterrupted) -> RpcError:
        timeout_ms = self.ctx.config.call_timeout_ms
        return RpcError(
            ErrorCode.EXECUTION_TIMEOUT,
            f"execution stopped: longer than call_timeout_ms ({timeout_ms} ms)",
            {"timeoutMs": timeout_ms, "steps": exc.steps},
        )

    def _call_state(self, header: Header) -> CallState:
        """This thread's reusable state after ``header`` (CallState is not thread-safe)."""
        cached: tuple[Hash32, CallState] | None = getattr(self._call_states, "entry", None)
        if cached is not None and cached[0] == header.hash:
            return cached[1]
        state = CallState(
            self.ctx.ledger.store.state(), header.state_root, self.ctx.ledger.context_for(header)
        )
        self._call_states.entry = (header.hash, state)
        return state

    def _call_request(self, params: list[Any], method: str) -> tuple[dict[str, Any], Header]:
        """The parameters eth_call, eth_estimateGas and eth_createAccessList share: the call
        object (with its state overrides, as :meth:`_call_args` gives them) and the header of
        the block whose state it runs on."""
        call_raw, block_raw, overrides_raw = p.positional(params, 1, 3, method)
        args = self._call_args(call_raw)
        args["overrides"] = state_overrides(overrides_raw)
        return args, self.ctx.state_header(block_raw, "block")

    async def eth_call(self, params: list[Any]) -> str:
        """Execute a call against a block's state and return its output; a revert answers
        error 3 with the revert data (see :func:`reverted`)."""
        args, header = self._call_request(params, "eth_call")
        should_stop = self._deadline()
        try:
            try:
                result = self._call_state(header).call(**args, should_stop=_beyond_inline_budget)
            except CallInterrupted:
                result = await self.ctx.off_loop(
                    lambda: self._call_state(header).call(**args, should_stop=should_stop)
                )
        except CallInterrupted as exc:
            raise self._timeout(exc) from exc
        except ExecutionError as exc:
            raise InvalidParams(str(exc)) from exc
        if not result.success:
            raise reverted(result.output)
        return fmt.data(result.output)

    async def eth_estimate_gas(self, params: list[Any]) -> str:
        """The smallest gas limit with which the call succeeds."""
        args, header = self._call_request(params, "eth_estimateGas")
        should_stop = self._deadline()
        try:
            gas = await self.ctx.off_loop(
                lambda: self._call_state(header).estimate_gas(**args, should_stop=should_stop)
            )
        except CallInterrupted as exc:
            raise self._timeout(exc) from exc
        except CallReverted as exc:
            raise reverted(exc.output) from exc
        except ExecutionError as exc:
            raise InvalidParams(str(exc)) from exc
        return fmt.quantity(gas)

    async def eth_create_access_list(self, params: list[Any]) -> dict[str, Any]:
        """The accounts and storage slots the call touches, and its gas (geth's
        ``eth_createAccessList``; see :meth:`chain.execution.CallState.access_list`). The
        call runs once, with the parameters, bounds and rollback of eth_call; a failing
        call still answers, with ``error`` (:func:`access_list_json`). Transactions here
        carry no access list, so ``gasUsed`` is what the call costs without one."""
        args, header = self._call_request(params, "eth_createAccessList")
        should_stop = self._deadline()
        try:
            result = await self.ctx.off_loop(
                lambda: self._call_state(header).access_list(**args, should_stop=should_stop)
            )
        except CallInterrupted as exc:
            raise self._timeout(exc) from exc
        except AccessListTooLong as exc:
            raise LimitExceeded(str(exc), {"limit": exc.limit}) from exc
        except ExecutionError as exc:
            raise InvalidParams(str(exc)) from exc
        return access_list_json(result)
