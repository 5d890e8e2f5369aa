"""``eth_simulateV1`` (the execution-apis method, as geth answers it): blocks of calls simulated
one after another on a block's state, on the reader pool; nothing is stored
(:func:`chain.execution.simulate`).

Parameters: ``{blockStateCalls: [{blockOverrides?, stateOverrides?, calls?}], validation?,
traceTransfers?, returnFullTransactions?}`` and a block (tag, number or hash; default
``latest``). Calls are eth_call's call objects (:meth:`CallMethods._call_args`), ``from``
defaulting to the zero address; ``gas`` defaults to what is left of the block's gas limit,
``nonce`` is checked only with ``validation``. Block overrides: ``number``, ``time``,
``gasLimit``, ``feeRecipient``, ``prevRandao``, ``baseFeePerGas``, ``blobBaseFee``;
``difficulty``, ``beaconRoot`` and ``withdrawals`` (no proof of work, beacon chain or
withdrawals here) and anything else are refused with -32602.

Bounds, as eth_call's: the calls together use at most ``gas_cap`` gas, and the whole
simulation stops at ``call_timeout_ms`` from the request's arrival (-32007); at most
:data:`~chain.execution.MAX_BLOCKS` blocks and :data:`~chain.execution.MAX_CALLS` calls,
refused (-38026) before any call is parsed further; state overrides of all blocks together
within eth_call's bounds for one call. One request takes one rate-limit token, as eth_call:
its work is bounded by the same gas and time.

A request the spec refuses as a whole answers its code (:data:`REFUSAL_CODES`); a call that
fails is a result: ``status`` 0 with ``error`` (3 and the revert data for a revert, as eth_call
answers, or :data:`VM_ERROR_CODE` with py-evm's error)."""

from __future__ import annotations

from typing import Any

from chain.errors import ExecutionError
from chain.execution import (
    MAX_BLOCKS,
    MAX_CALLS,
    BlockOverrides,
    BlockStateCalls,
    CallInterrupted,
    Refusal,
    SimulatedBlock,
    SimulatedCall,
    SimulatedCallResult,
    SimulationRefused,
    simulate,
)
from node.rpc import format as fmt
from node.rpc import params as p
from node.rpc.call_methods import CallMethods, revert_message, state_overrides
from node.rpc.context import RpcContext
from node.rpc.errors import ErrorCode, InvalidParams, RpcError
from node.rpc.fees import BASE_FEE_PER_GAS

REFUSAL_CODES: dict[Refusal, ErrorCode] = {
    Refusal.NONCE_TOO_LOW: ErrorCode.SIMULATE_NONCE_TOO_LOW,
    Refusal.NONCE_TOO_HIGH: ErrorCode.SIMULATE_NONCE_TOO_HIGH,
    Refusal.INTRINSIC_GAS: ErrorCode.SIMULATE_INTRINSIC_GAS,
    Refusal.INSUFFICIENT_FUNDS: ErrorCode.SIMULATE_INSUFFICIENT_FUNDS,
    Refusal.BLOCK_GAS_LIMIT: ErrorCode.SIMULATE_BLOCK_GAS_LIMIT,
    Refusal.BLOCK_NUMBER: ErrorCode.SIMULATE_BLOCK_NUMBER,
    Refusal.BLOCK_TIMESTAMP: ErrorCode.SIMULATE_BLOCK_TIMESTAMP,
    Refusal.INIT_CODE_SIZE: ErrorCode.SIMULATE_INIT_CODE_SIZE,
    Refusal.CLIENT_LIMIT: ErrorCode.SIMULATE_CLIENT_LIMIT,
}
"""The execution-apis code of each refusal of a whole simulation (geth's codes)."""

VM_ERROR_CODE = -32015
"""The ``error.code`` of a call that failed otherwise than by REVERT (out of gas, an invalid
opcode...), inside its result: the spec's code, not an error of the request."""

PAYLOAD_FIELDS = frozenset(
    {"blockStateCalls", "validation", "traceTransfers", "returnFullTransactions"}
)
BLOCK_FIELDS = frozenset({"blockOverrides", "stateOverrides", "calls"})
OVERRIDE_FIELDS = frozenset(
    {"number", "time", "gasLimit", "feeRecipient", "prevRandao", "baseFeePerGas", "blobBaseFee"}
)


class SimulationError(RpcError):
    """A simulation refused as a whole, answered with the spec's code for it."""

    def __init__(self, refused: SimulationRefused) -> None:
        super().__init__(REFUSAL_CODES[refused.refusal], str(refused))


def _list(value: Any, field: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidParams(f"{field}: expected an array")
    return value


def _object(value: Any, field: str, allowed: frozenset[str]) -> dict[str, Any]:
    result = p.optional_object(value, field)
    unknown = set(result) - allowed
    if unknown:
        raise InvalidParams(f"{field}: unsupported fields {sorted(unknown)}")
    return result


def block_overrides(value: Any, field: str) -> BlockOverrides:
    """A ``blockOverrides`` object (``null``: none)."""
    raw = _object(value, field, OVERRIDE_FIELDS)

    def number(name: str, maximum: int = p.MAX_UINT64) -> int | None:
        item = raw.get(name)
        return None if item is None else p.quantity(item, f"{field}.{name}", maximum)

    recipient, randao = raw.get("feeRecipient"), raw.get("prevRandao")
    return BlockOverrides(
        number=number("number"),
        time=number("time"),
        gas_limit=number("gasLimit"),
        fee_recipient=None if recipient is None else p.address(recipient, f"{field}.feeRecipient"),
        prev_randao=None if randao is None else p.hash32(randao, f"{field}.prevRandao"),
        base_fee=number("baseFeePerGas", p.MAX_UINT256),
        blob_base_fee=number("blobBaseFee", p.MAX_UINT256),
    )


class SimulateMethods:
    """``eth_simulateV1``, with eth_call's call parsing and bounds."""

    def __init__(self, ctx: RpcContext, calls: CallMethods) -> None:
        self.ctx = ctx
        self.calls = calls

    def _call(self, value: Any, field: str) -> SimulatedCall:
        if not isinstance(value, dict):
            raise InvalidParams(f"{field}: expected a call object")
        args = self.calls._call_args(value)
        gas, nonce = value.get("gas"), value.get("nonce")
        return SimulatedCall(
            sender=args["sender"],
            to=args["to"],
            data=args["data"],
            value=args["value"],
            gas=None if gas is None else p.quantity(gas, f"{field}.gas", p.MAX_UINT64),
            nonce=None if nonce is None else p.quantity(nonce, f"{field}.nonce", p.MAX_UINT64),
        )

    def _blocks(self, value: Any) -> list[BlockStateCalls]:
        if not isinstance(value, list):
            raise InvalidParams("blockStateCalls: expected an array")
        if len(value) > MAX_BLOCKS:
            raise SimulationError(
                SimulationRefused(Refusal.CLIENT_LIMIT, f"more than {MAX_BLOCKS} blocks")
            )
        raw_blocks = [
            _object(raw, f"blockStateCalls[{i}]", BLOCK_FIELDS) for i, raw in enumerate(value)
        ]
        raw_calls = [
            _list(raw.get("calls"), f"blockStateCalls[{i}].calls")
            for i, raw in enumerate(raw_blocks)
        ]
        count = sum(len(calls) for calls in raw_calls)
        if count > MAX_CALLS:
            raise SimulationError(
                SimulationRefused(Refusal.CLIENT_LIMIT, f"{count} calls, more than {MAX_CALLS}")
            )
        return [
            BlockStateCalls(
                overrides=block_overrides(
                    raw.get("blockOverrides"), f"blockStateCalls[{i}].blockOverrides"
                ),
                state_overrides=state_overrides(raw.get("stateOverrides")),
                calls=tuple(
                    self._call(call, f"blockStateCalls[{i}].calls[{j}]")
                    for j, call in enumerate(calls)
                ),
            )
            for i, (raw, calls) in enumerate(zip(raw_blocks, raw_calls, strict=True))
        ]

    async def eth_simulate_v1(self, params: list[Any]) -> list[dict[str, Any]]:
        """Simulated blocks with their calls' results (see the module docstring)."""
        payload_raw, block_raw = p.positional(params, 1, 2, "eth_simulateV1")
        if not isinstance(payload_raw, dict):
            raise InvalidParams("simulation: expected an object with blockStateCalls")
        payload = _object(payload_raw, "simulation", PAYLOAD_FIELDS)
        blocks = self._blocks(payload.get("blockStateCalls"))
        validation = p.boolean(payload.get("validation"), "validation")
        trace_transfers = p.boolean(payload.get("traceTransfers"), "traceTransfers")
        full = p.boolean(payload.get("returnFullTransactions"), "returnFullTransactions")
        header = self.ctx.state_header(block_raw, "block")
        ledger, config = self.ctx.ledger, self.ctx.config
        context = ledger.context_for(header)
        should_stop = self.calls._deadline()
        try:
            simulated = await self.ctx.off_loop(
                lambda: simulate(
                    ledger.store.state(),
                    header.state_root,
                    context,
                    parent_hash=header.hash,
                    blocks=blocks,
                    validation=validation,
                    trace_transfers=trace_transfers,
                    gas_allowance=config.gas_cap,
                    should_stop=should_stop,
                )
            )
        except CallInterrupted as exc:
            raise self.calls._timeout(exc) from exc
        except SimulationRefused as exc:
            raise SimulationError(exc) from exc
        except ExecutionError as exc:
            raise InvalidParams(str(exc)) from exc
        return [block_json(block, context.chain_id, full_transactions=full) for block in simulated]


def call_json(
    result: SimulatedCallResult, block: SimulatedBlock, index: int, first_log_index: int
) -> dict[str, Any]:
    """A call's result: ``returnData``, ``logs`` (with the simulated block's number and hash,
    the call's hash and index, block-wide log indexes), ``gasUsed``, ``status``, and ``error``
    when it failed."""
    answer: dict[str, Any] = {
        "returnData": fmt.data(result.output),
        "logs": [
            fmt.log_json(
                log,
                block_hash=block.hash,
                height=block.number,
                tx_hash=result.tx_hash,
                tx_index=index,
                log_index=first_log_index + i,
            )
            for i, log in enumerate(result.logs)
        ],
        "gasUsed": fmt.quantity(result.gas_used),
        "status": fmt.quantity(int(result.success)),
    }
    if result.reverted:
        answer["error"] = {
            "code": int(ErrorCode.EXECUTION_REVERTED),
            "message": revert_message(result.output),
            "data": fmt.data(result.output),
        }
    elif not result.success:
        answer["error"] = {"code": VM_ERROR_CODE, "message": result.error or "execution failed"}
    return answer


def transaction_json(
    result: SimulatedCallResult, block: SimulatedBlock, index: int, chain_id: int
) -> dict[str, Any]:
    """A simulated call as a transaction object, in the shape of the node's others (type 0,
    gas price 0, ``v`` for the chain id, ``r`` = ``s`` = 0: unsigned)."""
    call = result.call
    return {
        "hash": fmt.data(result.tx_hash),
        "blockHash": fmt.data(block.hash),
        "blockNumber": fmt.quantity(block.number),
        "transactionIndex": fmt.quantity(index),
        "from": fmt.data(call.sender),
        "to": None if call.to is None else fmt.data(call.to),
        "value": fmt.quantity(call.value),
        "gas": fmt.quantity(call.gas or 0),
        "gasPrice": "0x0",
        "input": fmt.data(call.data),
        "nonce": fmt.quantity(call.nonce or 0),
        "type": "0x0",
        "chainId": fmt.quantity(chain_id),
        "v": fmt.quantity(chain_id * 2 + 35),
        "r": "0x0",
        "s": "0x0",
    }


def block_json(
    block: SimulatedBlock, chain_id: int, *, full_transactions: bool = False
) -> dict[str, Any]:
    """A simulated block as an Ethereum block object with its ``calls``. ``hash`` is
    :func:`chain.execution.simulation.simulated_block_hash`; ``stateRoot`` the state after
    its calls; ``baseFeePerGas`` the override, or the nominal fee every block reports
    (:mod:`node.rpc.fees`); no ``transactionsRoot``, ``receiptsRoot`` or ``size`` (a simulated
    block is never encoded)."""
    calls: list[dict[str, Any]] = []
    log_index = 0
    for index, result in enumerate(block.calls):
        calls.append(call_json(result, block, index, log_index))
        log_index += len(result.logs)
    transactions: list[Any] = [
        transaction_json(result, block, index, chain_id)
        if full_transactions
        else fmt.data(result.tx_hash)
        for index, result in enumerate(block.calls)
    ]
    return {
        "number": fmt.quantity(block.number),
        "hash": fmt.data(block.hash),
        "parentHash": fmt.data(block.parent_hash),
        "nonce": fmt.ZERO_NONCE8,
        "sha3Uncles": fmt.EMPTY_UNCLES_HASH,
        "logsBloom": fmt.ZERO_BLOOM,
        "stateRoot": fmt.data(block.state_root),
        "miner": fmt.data(block.fee_recipient),
        "difficulty": "0x0",
        "extraData": "0x",
        "gasLimit": fmt.quantity(block.gas_limit),
        "gasUsed": fmt.quantity(block.gas_used),
        "timestamp": fmt.quantity(block.timestamp),
        "baseFeePerGas": fmt.quantity(
            BASE_FEE_PER_GAS if block.base_fee is None else block.base_fee
        ),
        "mixHash": fmt.data(block.prev_randao),
        "blobGasUsed": "0x0",
        "excessBlobGas": "0x0",
        "uncles": [],
        "withdrawals": [],
        "transactions": transactions,
        "calls": calls,
    }
