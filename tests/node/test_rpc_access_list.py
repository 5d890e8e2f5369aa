"""eth_createAccessList over JSON-RPC, in-process: geth's answer shape and hex formats, the
accounts and slots of Anchor's ``anchor(root)`` at a block named by its hash with the gas the
same transaction then uses in the next block, ``error`` with the revert reason when the call
fails, state overrides honoured for the call only, malformed parameters refused with -32602."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
from eth_utils import keccak
from node_harness import (
    TOTAL_SELECTOR,
    RpcClient,
    RpcFailure,
    anchor_call,
    make_chain,
    make_config,
    running_node,
    send_and_wait,
    signed_tx,
)

from chain.primitives import Address
from contracts.artifacts import load_artifact
from node.rpc.errors import ErrorCode

ADDRESS = re.compile(r"0x[0-9a-f]{40}")
"""An account in the answer: lowercase hex, as geth writes it."""
STORAGE_KEY = re.compile(r"0x[0-9a-f]{64}")
QUANTITY = re.compile(r"0x(0|[1-9a-f][0-9a-f]*)")

RICH = "0x" + "0a" * 20
TARGET = "0x" + "05" * 20


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


def _key(slot: int) -> str:
    return _hex(slot.to_bytes(32, "big"))


def _check_shape(answer: dict[str, Any], failed: bool) -> None:
    assert set(answer) == (
        {"accessList", "gasUsed", "error"} if failed else {"accessList", "gasUsed"}
    )
    assert QUANTITY.fullmatch(answer["gasUsed"])
    for entry in answer["accessList"]:
        assert set(entry) == {"address", "storageKeys"}
        assert ADDRESS.fullmatch(entry["address"])
        assert all(STORAGE_KEY.fullmatch(key) for key in entry["storageKeys"])


async def _access_list(client: RpcClient, *params: Any, failed: bool = False) -> dict[str, Any]:
    answer: dict[str, Any] = await client.call("eth_createAccessList", *params)
    _check_shape(answer, failed)
    return answer


def _reverting_code(slot: int, revert_data: bytes) -> bytes:
    """Runtime code that reads storage slot ``slot`` (< 256), then reverts with
    ``revert_data``: SLOAD, POP, CODECOPY of the bytes after the 16-byte prefix to memory 0,
    REVERT(0, len)."""
    size = len(revert_data).to_bytes(2, "big")
    prefix = bytes([0x60, slot, 0x54, 0x50, 0x61]) + size + bytes.fromhex("8060106000396000fd")
    assert len(prefix) == 16
    return prefix + revert_data


def _error_string(reason: str) -> bytes:
    encoded = reason.encode()
    return (
        bytes.fromhex("08c379a0")
        + (32).to_bytes(32, "big")
        + len(encoded).to_bytes(32, "big")
        + encoded.ljust(32, b"\x00")
    )


def test_create_access_list_over_rpc(tmp_path: Path) -> None:
    chain = make_chain()
    sender = _hex(chain.sender.public_key.address)

    async def run() -> None:
        async with running_node(chain, make_config(tmp_path)) as (_, client):
            deployed = await send_and_wait(
                client, signed_tx(chain.deployer, to=None, data=load_artifact("Anchor").bytecode)
            )
            anchor = str(deployed["contractAddress"])
            root = b"\x01" * 32
            request = {"from": sender, "to": anchor, "data": _hex(anchor_call(root))}

            # At the deployment's block, named by its hash (and by the EIP-1898 object):
            # anchorCount[root] read and written, then total (slot 1); the sender and a bare
            # anchor are left out, and nothing else was touched.
            by_hash = await _access_list(client, request, deployed["blockHash"])
            count_slot = _hex(keccak(root + bytes(32)))
            assert by_hash["accessList"] == [
                {"address": anchor.lower(), "storageKeys": [count_slot, _key(1)]}
            ]
            eip1898 = await _access_list(client, request, {"blockHash": deployed["blockHash"]})
            assert eip1898 == by_hash
            # gasUsed is what the same transaction then uses in the next block (transactions
            # carry no access list here).
            tx = signed_tx(
                chain.sender, to=Address(bytes.fromhex(anchor[2:])), data=anchor_call(root)
            )
            receipt = await send_and_wait(client, tx)
            assert int(receipt["blockNumber"], 16) == int(deployed["blockNumber"], 16) + 1
            assert receipt["gasUsed"] == by_hash["gasUsed"]
            # The call object's accessList is accepted and ignored, as eth_call does.
            listed = {**request, "accessList": by_hash["accessList"]}
            assert await _access_list(client, listed, deployed["blockHash"]) == by_hash

            # A view reads total only; the default block is latest.
            total = await _access_list(client, {"to": anchor, "data": _hex(TOTAL_SELECTOR)})
            assert total["accessList"] == [{"address": anchor.lower(), "storageKeys": [_key(1)]}]

            # A failing call answers, with error (no reason: Anchor has no fallback).
            failing = await _access_list(client, {"to": anchor, "data": "0xdeadbeef"}, failed=True)
            assert failing["error"] == "execution reverted"
            assert failing["accessList"] == []

            # Overrides hold for the call: the target's code reads slot 3 and reverts with a
            # reason; without them the target is an empty account.
            reverting = {TARGET: {"code": _hex(_reverting_code(3, _error_string("no way")))}}
            plain = {"from": sender, "to": TARGET}
            reverted = await _access_list(client, plain, "latest", reverting, failed=True)
            assert reverted["error"] == "execution reverted: no way"
            assert reverted["accessList"] == [{"address": TARGET, "storageKeys": [_key(3)]}]
            # A balance read (BALANCE of RICH) lists the account without slots.
            reading = {TARGET: {"code": "0x73" + RICH[2:] + "3150"}}
            balance = await _access_list(client, plain, "latest", reading)
            assert balance["accessList"] == [{"address": RICH, "storageKeys": []}]
            assert await _access_list(client, plain, "latest") == {
                "accessList": [],
                "gasUsed": hex(21_000),
            }

    asyncio.run(run())


def test_malformed_parameters_are_refused(tmp_path: Path) -> None:
    chain = make_chain()
    call = {"to": TARGET}
    refused: list[list[Any]] = [
        [],
        [call, "latest", None, "extra"],
        ["0x00"],
        [{"to": "0x01"}],
        [{"to": TARGET, "color": "blue"}],
        [{"to": TARGET, "data": "0x00", "input": "0x01"}],
        [{"to": TARGET, "gas": "0x1"}],  # below the intrinsic gas
        [{"to": TARGET, "value": "1"}],
        [call, "0xzz"],
        [call, "latest", {TARGET: "code"}],
        [call, "latest", {TARGET: {"state": {"0x01": _key(1)}}}],
    ]

    async def run() -> None:
        async with running_node(chain, make_config(tmp_path)) as (_, client):
            for params in refused:
                with pytest.raises(RpcFailure) as refusal:
                    await client.call("eth_createAccessList", *params)
                assert refusal.value.code == ErrorCode.INVALID_PARAMS, params
            with pytest.raises(RpcFailure) as missing:
                await client.call("eth_createAccessList", call, _key(9))
            assert missing.value.code == ErrorCode.NOT_FOUND

    asyncio.run(run())
