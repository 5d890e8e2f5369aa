"""eth_simulateV1 over JSON-RPC, in-process: the answer's shape and hex formats, blocks chained
on the block the request names (by hash too), overrides the EVM reads, a revert answered in
its call's result, transfer logs with ``traceTransfers``, the spec's error codes for requests
refused as a whole, malformed parameters refused with -32602 (and junk payloads never crash
the parser)."""

from __future__ import annotations

import asyncio
import itertools
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from node_harness import RpcFailure, make_chain, make_config, running_node

from node.rpc.call_methods import CallMethods
from node.rpc.errors import ErrorCode, RpcError
from node.rpc.simulate_methods import SimulateMethods

QUANTITY = re.compile(r"0x(0|[1-9a-f][0-9a-f]*)")
HASH = re.compile(r"0x[0-9a-f]{64}")
ADDRESS = re.compile(r"0x[0-9a-f]{40}")

TARGET = "0x" + "05" * 20
RICH = "0x" + "0a" * 20
SINK = "0x" + "0b" * 20
TRANSFER_EMITTER = "0x" + "ee" * 20
TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"

# NUMBER, TIMESTAMP, COINBASE, BASEFEE stored at 0, 32, 64, 96; LOG1(topic 7) of nothing;
# RETURN(0, 128).
ENV_CODE = "0x" + "".join(
    ("43600052", "42602052", "41604052", "48606052", "6007600060" + "00a1", "60806000f3")
)
REVERT_CODE = "0x61dead6000526002601efd"
"""REVERT with the 2 bytes 0xdead."""


def _word(output: str, index: int) -> int:
    return int(output[2 + 64 * index : 2 + 64 * (index + 1)], 16)


def _check_block_shape(block: dict[str, Any], full: bool = False) -> None:
    for key in ("number", "gasLimit", "gasUsed", "timestamp", "baseFeePerGas"):
        assert QUANTITY.fullmatch(block[key]), key
    for key in ("hash", "parentHash", "stateRoot", "mixHash"):
        assert HASH.fullmatch(block[key]), key
    assert ADDRESS.fullmatch(block["miner"])
    assert len(block["transactions"]) == len(block["calls"])
    for tx, call in zip(block["transactions"], block["calls"], strict=True):
        assert set(call) - {"error"} == {"returnData", "logs", "gasUsed", "status"}
        assert call["status"] in ("0x0", "0x1")
        assert QUANTITY.fullmatch(call["gasUsed"])
        tx_hash = tx["hash"] if full else tx
        assert HASH.fullmatch(tx_hash)
        for log in call["logs"]:
            assert log["blockHash"] == block["hash"]
            assert log["blockNumber"] == block["number"]
            assert log["transactionHash"] == tx_hash


async def _simulate(client: Any, payload: dict[str, Any], *block: Any) -> list[dict[str, Any]]:
    full = bool(payload.get("returnFullTransactions"))
    blocks: list[dict[str, Any]] = await client.call("eth_simulateV1", payload, *block)
    for simulated in blocks:
        _check_block_shape(simulated, full)
    return blocks


def test_simulate_over_rpc(tmp_path: Path) -> None:
    chain = make_chain()

    async def run() -> None:
        async with running_node(chain, make_config(tmp_path)) as (_, client):
            head = await client.call("eth_getBlockByNumber", "latest", False)
            code = {TARGET: {"code": ENV_CODE}, RICH: {"balance": hex(10**18)}}
            payload = {
                "blockStateCalls": [
                    {"stateOverrides": code, "calls": [{"to": TARGET}, {"to": TARGET}]},
                    {
                        "blockOverrides": {
                            "number": hex(int(head["number"], 16) + 5),
                            "time": hex(int(head["timestamp"], 16) + 100),
                            "feeRecipient": SINK,
                            "baseFeePerGas": "0xa",
                            "gasLimit": hex(1_000_000),
                        },
                        "calls": [{"to": TARGET}, {"to": TARGET, "data": "0x", "input": "0x"}],
                    },
                ],
                "returnFullTransactions": True,
            }
            # By hash: the same answer as by tag.
            blocks = await _simulate(client, payload, head["hash"])
            assert blocks == await _simulate(client, payload)
            assert blocks == await _simulate(client, payload, {"blockHash": head["hash"]})
            assert [int(block["number"], 16) for block in blocks] == [
                int(head["number"], 16) + n for n in range(1, 6)
            ]
            assert blocks[0]["parentHash"] == head["hash"]
            for parent, child in itertools.pairwise(blocks):
                assert child["parentHash"] == parent["hash"]
            first, *gaps, last = blocks
            assert all(gap["calls"] == [] and gap["transactions"] == [] for gap in gaps)
            # What the EVM read: the defaults, then the overrides.
            output = first["calls"][0]["returnData"]
            assert _word(output, 0) == int(first["number"], 16)
            assert _word(output, 1) == int(head["timestamp"], 16) + 1
            assert (_word(output, 2), _word(output, 3)) == (0, 0)
            output = last["calls"][0]["returnData"]
            assert _word(output, 1) == int(head["timestamp"], 16) + 100
            assert (_word(output, 2), _word(output, 3)) == (int(SINK, 16), 10)
            assert (last["miner"], last["baseFeePerGas"], last["gasLimit"]) == (
                SINK,
                "0xa",
                hex(1_000_000),
            )
            # The nominal base fee when not overridden; gas used summed over the calls.
            assert first["baseFeePerGas"] == "0x1"
            assert int(first["gasUsed"], 16) == sum(int(c["gasUsed"], 16) for c in first["calls"])
            # Logs: block-wide indexes, the call's index.
            logs = [log for call in last["calls"] for log in call["logs"]]
            assert [log["logIndex"] for log in logs] == ["0x0", "0x1"]
            assert [log["transactionIndex"] for log in logs] == ["0x0", "0x1"]
            assert logs[0]["address"] == TARGET and logs[0]["topics"] == ["0x" + "00" * 31 + "07"]
            # Full transactions: eth_call's defaults, the nonce and gas the call ran with.
            tx = last["transactions"][1]
            assert (tx["from"], tx["to"], tx["nonce"], tx["blockHash"]) == (
                "0x" + "00" * 20,
                TARGET,
                "0x3",
                last["hash"],
            )
            assert tx["gas"] == hex(1_000_000 - int(last["calls"][0]["gasUsed"], 16))
            assert tx["hash"] == logs[1]["transactionHash"]

            # A revert in the middle: its result, and the calls after it still run.
            reverting = {
                "blockStateCalls": [
                    {
                        "stateOverrides": {SINK: {"code": REVERT_CODE}, **code},
                        "calls": [{"to": SINK}, {"to": TARGET}],
                    }
                ]
            }
            (block,) = await _simulate(client, reverting)
            reverted, after = block["calls"]
            assert reverted["status"] == "0x0" and reverted["returnData"] == "0xdead"
            assert reverted["error"] == {
                "code": 3,
                "message": "execution reverted",
                "data": "0xdead",
            }
            assert after["status"] == "0x1" and "error" not in after

            # Transfers traced as ERC-20 Transfer logs from 0xeee...e.
            transfer = {
                "blockStateCalls": [
                    {
                        "stateOverrides": {RICH: {"balance": "0x64"}},
                        "calls": [{"from": RICH, "to": SINK, "value": "0x5"}],
                    }
                ],
                "traceTransfers": True,
            }
            (block,) = await _simulate(client, transfer)
            (log,) = block["calls"][0]["logs"]
            assert log["address"] == TRANSFER_EMITTER
            assert log["topics"] == [
                TRANSFER_TOPIC,
                "0x" + "00" * 12 + RICH[2:],
                "0x" + "00" * 12 + SINK[2:],
            ]
            assert log["data"] == "0x" + "00" * 31 + "05"
            untraced = await _simulate(client, {**transfer, "traceTransfers": False})
            assert untraced[0]["calls"][0]["logs"] == []

            # Nothing was stored.
            assert await client.call("eth_getBalance", RICH, "latest") == "0x0"
            assert await client.call("eth_getCode", TARGET, "latest") == "0x"

    asyncio.run(run())


def test_requests_refused_as_a_whole_answer_the_spec_codes(tmp_path: Path) -> None:
    chain = make_chain()
    rich = {RICH: {"balance": "0x64"}}

    def single(call: dict[str, Any], **options: Any) -> dict[str, Any]:
        return {"blockStateCalls": [{"stateOverrides": rich, "calls": [call]}], **options}

    refusals: list[tuple[dict[str, Any], int]] = [
        (single({"from": RICH, "to": SINK, "nonce": "0x1"}, validation=True), -38011),
        (
            {
                "blockStateCalls": [
                    {"stateOverrides": rich, "calls": [{"from": RICH, "to": SINK}]},
                    {"calls": [{"from": RICH, "to": SINK, "nonce": "0x0"}]},
                ],
                "validation": True,
            },
            -38010,
        ),
        (single({"to": SINK, "gas": "0x5208", "value": "0x1"}), -38014),
        (single({"to": SINK, "gas": "0x5207"}), -38013),
        (single({"to": SINK, "gas": hex(30_000_001)}), -38015),
        (single({"data": "0x" + "00" * 49_153}), -38025),
        ({"blockStateCalls": [{"blockOverrides": {"number": "0x0"}}]}, -38020),
        ({"blockStateCalls": [{"blockOverrides": {"time": "0x0"}}]}, -38021),
        ({"blockStateCalls": [{}] * 257}, -38026),
        ({"blockStateCalls": [{"calls": [{"to": SINK}] * 1_001}]}, -38026),
        ({"blockStateCalls": [{"blockOverrides": {"number": "0xffff"}}]}, -38026),
    ]

    async def run() -> None:
        async with running_node(chain, make_config(tmp_path)) as (_, client):
            for payload, code in refusals:
                with pytest.raises(RpcFailure) as refused:
                    await client.call("eth_simulateV1", payload, "latest")
                assert refused.value.code == code, (payload, refused.value.message)
            # A wrong nonce is ignored without validation.
            payload = single({"from": RICH, "to": SINK, "nonce": "0x1"})
            (block,) = await client.call("eth_simulateV1", payload)
            assert block["calls"][0]["status"] == "0x1"

    asyncio.run(run())


def test_malformed_parameters_are_refused(tmp_path: Path) -> None:
    chain = make_chain()
    ok = {"blockStateCalls": [{"calls": [{"to": SINK}]}]}
    refused: list[list[Any]] = [
        [],
        [ok, "latest", "extra"],
        ["0x00"],
        [{"blockStateCalls": {}}],
        [{"blockStateCalls": [], "color": "blue"}],
        [{"blockStateCalls": [{"calls": {}}]}],
        [{"blockStateCalls": [{"calls": ["0x"]}]}],
        [{"blockStateCalls": [{"calls": [{"to": "0x01"}]}]}],
        [{"blockStateCalls": [{"calls": [{"to": SINK, "nonce": "1"}]}]}],
        [{"blockStateCalls": [{"blockOverrides": {"difficulty": "0x1"}}]}],
        [{"blockStateCalls": [{"blockOverrides": {"prevRandao": "0x01"}}]}],
        [{"blockStateCalls": [{"blockOverrides": {"feeRecipient": "0x01"}}]}],
        [{"blockStateCalls": [{"stateOverrides": {SINK: {"balance": "x"}}}]}],
        [{"blockStateCalls": [{"extra": 1}]}],
        [{"blockStateCalls": [], "validation": "yes"}],
        [ok, "0xzz"],
    ]

    async def run() -> None:
        async with running_node(chain, make_config(tmp_path)) as (_, client):
            for params in refused:
                with pytest.raises(RpcFailure) as refusal:
                    await client.call("eth_simulateV1", *params)
                assert refusal.value.code == ErrorCode.INVALID_PARAMS, params
            with pytest.raises(RpcFailure) as missing:
                await client.call("eth_simulateV1", ok, "0x" + "09" * 32)
            assert missing.value.code == ErrorCode.NOT_FOUND
            assert await client.call("eth_simulateV1", {"blockStateCalls": []}) == []

    asyncio.run(run())


class _Parsed(Exception):
    """Raised where the handler, having parsed its parameters, looks the block up."""


def _parser(tmp_path: Path) -> SimulateMethods:
    def state_header(value: Any, field: str) -> None:
        raise _Parsed

    ctx: Any = SimpleNamespace(config=make_config(tmp_path), state_header=state_header)
    return SimulateMethods(ctx, CallMethods(ctx))


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=8)
    | st.sampled_from(["0x", "0x1", SINK]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=12,
)
FIELDS = st.sampled_from(
    ["blockStateCalls", "validation", "traceTransfers", "returnFullTransactions", "calls",
     "blockOverrides", "stateOverrides", "to", "from", "gas", "nonce", "number", "time",
     "feeRecipient", "prevRandao", "baseFeePerGas", "balance", "code"]
)  # fmt: skip
SHAPED = st.recursive(
    JSON,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(FIELDS, inner, max_size=4),
    max_leaves=16,
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(payload=SHAPED)
def test_junk_payloads_are_refused_or_parsed_never_crash(tmp_path: Path, payload: Any) -> None:
    methods = _parser(tmp_path)
    try:
        asyncio.run(methods.eth_simulate_v1([payload]))
    except _Parsed:
        pass
    except RpcError as exc:
        assert exc.to_json()["code"] in (ErrorCode.INVALID_PARAMS, -38026), exc.message
