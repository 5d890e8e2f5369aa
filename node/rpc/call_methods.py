"""``eth_call`` and ``eth_estimateGas``: EVM execution on a block's state, on the reader pool."""

from __future__ import annotations

import threading
from typing import Any

from chain.errors import ExecutionError
from chain.execution import CallReverted, CallState
from chain.primitives import Address, Hash32
from chain.types import Header
from node.rpc import format as fmt
from node.rpc import params as p
from node.rpc.context import RpcContext
from node.rpc.errors import ErrorCode, InvalidParams, RpcError


class CallMethods:
    """Read-only calls and gas estimation."""

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

    async def eth_call(self, params: list[Any]) -> str:
        """Execute a call against a block's state and return its output; a revert answers
        error 3 with the revert data."""
        call_raw, block_raw, overrides = p.positional(params, 1, 3, "eth_call")
        if overrides is not None:
            raise InvalidParams("state overrides are not supported")
        args = self._call_args(call_raw)
        header = self.ctx.state_header(block_raw, "block")
        try:
            result = await self.ctx.off_loop(lambda: self._call_state(header).call(**args))
        except ExecutionError as exc:
            raise InvalidParams(str(exc)) from exc
        if not result.success:
            raise RpcError(
                ErrorCode.EXECUTION_REVERTED, "execution reverted", fmt.data(result.output)
            )
        return fmt.data(result.output)

    async def eth_estimate_gas(self, params: list[Any]) -> str:
        """The smallest gas limit with which the call succeeds."""
        call_raw, block_raw = p.positional(params, 1, 2, "eth_estimateGas")
        args = self._call_args(call_raw)
        header = self.ctx.state_header(block_raw, "block")
        try:
            gas = await self.ctx.off_loop(lambda: self._call_state(header).estimate_gas(**args))
        except CallReverted as exc:
            raise RpcError(
                ErrorCode.EXECUTION_REVERTED, "execution reverted", fmt.data(exc.output)
            ) from exc
        except ExecutionError as exc:
            raise InvalidParams(str(exc)) from exc
        return fmt.quantity(gas)
