"""The node's JSON-RPC server end to end, in-process on an ephemeral port: deploy Anchor with
SM2-signed transactions, read receipts, call, query logs and filters, verify Merkle proofs,
subscribe over WebSocket, use web3.py, then restart from the same data directory."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from node_harness import (
    ANCHORED_TOPIC,
    TOTAL_SELECTOR,
    DevChain,
    RpcClient,
    RpcFailure,
    anchor_call,
    make_chain,
    make_config,
    raw_hex,
    running_node,
    send_and_wait,
    signed_tx,
)

from chain.commit import precommit_sign_bytes
from chain.crypto import PublicKey
from chain.merkle import MerkleProof, verify_proof
from chain.primitives import Hash32
from chain.types import CommitCertificate, Header, Receipt
from contracts.artifacts import load_artifact
from node.rpc.errors import ErrorCode


def _bytes(value: str) -> bytes:
    return bytes.fromhex(value.removeprefix("0x"))


async def _deploy_anchor(chain: DevChain, client: RpcClient) -> str:
    receipt = await send_and_wait(
        client, signed_tx(chain.deployer, to=None, data=load_artifact("Anchor").bytecode)
    )
    assert receipt["status"] == "0x1"
    assert receipt["contractAddress"] is not None
    return str(receipt["contractAddress"])


def _check_block_shape(block: dict[str, Any]) -> None:
    for key in ("hash", "parentHash", "stateRoot", "transactionsRoot", "receiptsRoot"):
        assert len(_bytes(block[key])) == 32
    assert len(_bytes(block["logsBloom"])) == 256
    assert int(block["number"], 16) >= 0


def _verify_proof_reply(reply: dict[str, Any]) -> None:
    proof = MerkleProof.decode(_bytes(reply["proof"]["encoded"]))
    header = Header.decode(_bytes(reply["header"]["encoded"]))
    assert "0x" + header.hash.hex() == reply["blockHash"]
    verify_proof(Hash32(_bytes(reply["root"])), _bytes(reply["leaf"]), proof)


def test_deploy_call_logs_filters_proofs_and_restart(tmp_path: Path) -> None:
    chain = make_chain()
    config = make_config(tmp_path)

    async def first_run() -> dict[str, Any]:
        async with running_node(chain, config) as (_, client):
            assert await client.call("eth_chainId") == hex(chain.genesis.chain_id)
            assert await client.call("eth_blockNumber") == "0x0"
            genesis_block = await client.call("eth_getBlockByNumber", "0x0", False)
            _check_block_shape(genesis_block)

            anchor = await _deploy_anchor(chain, client)
            code = await client.call("eth_getCode", anchor, "latest")
            assert _bytes(code) == load_artifact("Anchor").deployed_bytecode

            filter_id = await client.call("eth_newFilter", {"address": anchor})
            block_filter = await client.call("eth_newBlockFilter")

            roots = [bytes([i]) * 32 for i in range(1, 6)]
            receipts = []
            for root in roots:
                tx = signed_tx(chain.sender, to=_bytes(anchor), data=anchor_call(root))  # type: ignore[arg-type]
                receipts.append(await send_and_wait(client, tx))
            for receipt, root in zip(receipts, roots, strict=True):
                assert receipt["status"] == "0x1"
                (log,) = receipt["logs"]
                assert log["topics"][0] == "0x" + ANCHORED_TOPIC.hex()
                assert log["topics"][1] == "0x" + root.hex()
                assert log["address"] == anchor

            total = await client.call(
                "eth_call", {"to": anchor, "data": "0x" + TOTAL_SELECTOR.hex()}, "latest"
            )
            assert int(total, 16) == len(roots)
            # The state of an older block is still readable.
            old = await client.call(
                "eth_call", {"to": anchor, "data": "0x" + TOTAL_SELECTOR.hex()}, "0x1"
            )
            assert int(old, 16) == 0
            assert int(await client.call("eth_getStorageAt", anchor, "0x1", "latest"), 16) == 5
            sender = "0x" + chain.sender.public_key.address.hex()
            assert await client.call("eth_getTransactionCount", sender, "latest") == "0x5"

            logs = await client.call("eth_getLogs", {"fromBlock": "0x0", "address": anchor})
            assert [log["topics"][1] for log in logs] == ["0x" + r.hex() for r in roots]
            by_topic = await client.call(
                "eth_getLogs",
                {"fromBlock": "earliest", "topics": [None, "0x" + roots[2].hex()]},
            )
            assert len(by_topic) == 1
            assert by_topic[0]["transactionHash"] == receipts[2]["transactionHash"]
            by_hash = await client.call("eth_getLogs", {"blockHash": receipts[3]["blockHash"]})
            assert [x["transactionHash"] for x in by_hash] == [receipts[3]["transactionHash"]]

            changes = await client.call("eth_getFilterChanges", filter_id)
            assert len(changes) == len(roots)
            assert await client.call("eth_getFilterChanges", filter_id) == []
            assert len(await client.call("eth_getFilterLogs", filter_id)) == len(roots)
            hashes = await client.call("eth_getFilterChanges", block_filter)
            assert receipts[-1]["blockHash"] in hashes
            assert await client.call("eth_uninstallFilter", filter_id) is True
            with pytest.raises(RpcFailure) as missing:
                await client.call("eth_getFilterChanges", filter_id)
            assert missing.value.code == ErrorCode.NOT_FOUND

            tx_hash = receipts[2]["transactionHash"]
            tx_proof = await client.call("lianxin_getTransactionProof", tx_hash)
            _verify_proof_reply(tx_proof)
            receipt_proof = await client.call("lianxin_getReceiptProof", tx_hash)
            _verify_proof_reply(receipt_proof)
            assert Receipt.decode(_bytes(receipt_proof["leaf"])).tx_hash.hex() == tx_hash[2:]

            header_reply = await client.call("lianxin_getBlockHeader", receipts[2]["blockHash"])
            header = Header.decode(_bytes(header_reply["header"]["encoded"]))
            certificate = CommitCertificate.decode(_bytes(header_reply["certificate"]["encoded"]))
            assert certificate.block_hash == header.hash
            (signature,) = certificate.signatures
            PublicKey.from_bytes(chain.validator.public_key.to_bytes()).verify(
                signature.signature,
                precommit_sign_bytes(chain.genesis.chain_id, header.height, 0, header.hash),
            )

            full = await client.call("eth_getBlockByHash", receipts[0]["blockHash"], True)
            _check_block_shape(full)
            assert full["transactions"][0]["hash"] == receipts[0]["transactionHash"]
            status = await client.call("lianxin_getConsensusStatus")
            assert status["mode"] == "dev"
            assert await client.call("lianxin_getPeers") == []
            validators = await client.call("lianxin_getValidators")
            assert validators["validators"][0]["address"] == (
                "0x" + chain.validator.public_key.address.hex()
            )
            return {
                "anchor": anchor,
                "receipts": receipts,
                "head": await client.call("eth_blockNumber"),
                "logs": logs,
            }

    async def second_run(before: dict[str, Any]) -> None:
        async with running_node(chain, config) as (_, client):
            assert await client.call("eth_blockNumber") == before["head"]
            for receipt in before["receipts"]:
                again = await client.call("eth_getTransactionReceipt", receipt["transactionHash"])
                assert again == receipt
            logs = await client.call(
                "eth_getLogs", {"fromBlock": "0x0", "address": before["anchor"]}
            )
            assert logs == before["logs"]
            # The chain continues from the stored head.
            tx = signed_tx(
                chain.sender, to=_bytes(before["anchor"]), data=anchor_call(b"\x09" * 32)
            )  # type: ignore[arg-type]
            receipt = await send_and_wait(client, tx)
            assert int(receipt["blockNumber"], 16) == int(before["head"], 16) + 1

    before = asyncio.run(first_run())
    # Logs are indexed inside the block store's own commits: no second environment (the
    # mempool keeps accepted transactions across restarts in a directory of its own).
    directories = {path.name for path in config.data_dir.iterdir() if path.is_dir()}
    assert directories - {"mempool"} == {"blocks"}
    asyncio.run(second_run(before))


def test_revert_and_estimate_gas(tmp_path: Path) -> None:
    chain = make_chain()

    async def run() -> None:
        async with running_node(chain, make_config(tmp_path)) as (_, client):
            anchor = await _deploy_anchor(chain, client)
            with pytest.raises(RpcFailure) as reverted:
                await client.call("eth_call", {"to": anchor, "data": "0xdeadbeef"}, "latest")
            assert reverted.value.code == ErrorCode.EXECUTION_REVERTED
            gas = await client.call(
                "eth_estimateGas",
                {
                    "from": "0x" + chain.sender.public_key.address.hex(),
                    "to": anchor,
                    "data": "0x" + anchor_call(b"\x01" * 32).hex(),
                },
            )
            assert 21_000 < int(gas, 16) < 200_000
            # A failing transaction is committed with status 0 and no logs.
            tx = signed_tx(chain.sender, to=_bytes(anchor), data=b"\xde\xad\xbe\xef")  # type: ignore[arg-type]
            receipt = await send_and_wait(client, tx)
            assert receipt["status"] == "0x0"
            assert receipt["logs"] == []

    asyncio.run(run())


def _reverting_init_code(revert_data: bytes) -> bytes:
    """Init code that reverts with ``revert_data``: CODECOPY of the bytes after the 12-byte
    prefix to memory 0, then REVERT(0, len)."""
    size = len(revert_data).to_bytes(2, "big")
    return b"\x61" + size + b"\x80\x60\x0c\x60\x00\x39\x60\x00\xfd" + revert_data


def test_a_revert_reason_string_is_in_the_error_message(tmp_path: Path) -> None:
    """A call reverting with Error(string) answers "execution reverted: <reason>", as geth
    and anvil do (web3.py raises ContractLogicError with the message); other revert data
    keeps the bare message. The data is the revert data either way."""
    reason = "Function has been reverted."
    encoded = reason.encode()
    error = (
        bytes.fromhex("08c379a0")
        + (32).to_bytes(32, "big")
        + len(encoded).to_bytes(32, "big")
        + encoded.ljust(32, b"\x00")
    )
    custom = bytes.fromhex("82b42900")  # Unauthorized()
    cut = error[:40]  # the selector of Error(string) with a truncated body

    async def run() -> None:
        async with running_node(make_chain(), make_config(tmp_path)) as (_, client):
            for method in ("eth_call", "eth_estimateGas"):
                for data, message in (
                    (error, f"execution reverted: {reason}"),
                    (custom, "execution reverted"),
                    (cut, "execution reverted"),
                ):
                    request = {"data": "0x" + _reverting_init_code(data).hex()}
                    with pytest.raises(RpcFailure) as reverted:
                        await client.call(method, request, "latest")
                    assert reverted.value.code == ErrorCode.EXECUTION_REVERTED
                    assert (reverted.value.message, reverted.value.data) == (
                        message,
                        "0x" + data.hex(),
                    )

    asyncio.run(run())


RETURN_SLOT_ZERO = bytes.fromhex("60005460005260206000f3")
"""Runtime code that returns storage slot 0 (SLOAD 0, MSTORE 0, RETURN 32 bytes)."""

RETURN_42 = bytes.fromhex("602a60005260206000f3")
"""Runtime code that returns 42."""


def test_state_overrides_hold_for_the_call_only(tmp_path: Path) -> None:
    """geth's third parameter of eth_call and eth_estimateGas: code, storage (whole or
    diff), balance and nonce hold for that call, and the next call sees the state as it is;
    null is no override; malformed or oversize overrides are -32602 and change nothing."""
    chain = make_chain()
    target = "0x" + "05" * 20
    sender = "0x" + chain.sender.public_key.address.hex()
    poor = "0x" + "06" * 20
    word = "0x" + "00" * 31 + "07"
    slot0 = "0x" + "00" * 32

    async def run() -> None:
        async with running_node(chain, make_config(tmp_path)) as (_, client):
            plain = {"from": sender, "to": target}
            assert await client.call("eth_estimateGas", plain, "latest", None) == hex(21_000)
            assert await client.call("eth_call", plain, "latest", None) == "0x"
            code = {target: {"code": "0x" + RETURN_42.hex()}}
            assert int(await client.call("eth_call", plain, "latest", code), 16) == 42
            for storage in ("state", "stateDiff"):
                override = {target: {"code": "0x" + RETURN_SLOT_ZERO.hex(), storage: {slot0: word}}}
                assert int(await client.call("eth_call", plain, "latest", override), 16) == 7
                assert int(await client.call("eth_estimateGas", plain, "latest", override), 16)
            # Nothing stayed: the target has no code again, the poor account no balance.
            assert await client.call("eth_call", plain, "latest") == "0x"
            assert await client.call("eth_getCode", target, "latest") == "0x"
            paying = {"from": poor, "to": target, "value": hex(10**18)}
            with pytest.raises(RpcFailure):
                await client.call("eth_call", paying, "latest")
            rich = {poor: {"balance": hex(2 * 10**18), "nonce": "0x5"}}
            assert await client.call("eth_call", paying, "latest", rich) == "0x"
            assert await client.call("eth_estimateGas", paying, "latest", rich) == hex(21_000)
            with pytest.raises(RpcFailure):
                await client.call("eth_call", paying, "latest")
            refused = [
                [],
                {target: {"movePrecompileToAddress": target}},
                {target: {"state": {slot0: word}, "stateDiff": {slot0: word}}},
                {target: {"state": {"0x01": word}}},
                {target: {"stateDiff": {slot0: "0x07"}}},
                {target: {"nonce": hex(2**64)}},
                {target: {"balance": "0x" + "f" * 65}},
                {"0x05": {"balance": "0x1"}},
                {f"0x{n:040x}": {"balance": "0x1"} for n in range(257)},
                {target: "code"},
            ]
            for overrides in refused:
                for method in ("eth_call", "eth_estimateGas"):
                    with pytest.raises(RpcFailure) as refusal:
                        await client.call(method, plain, "latest", overrides)
                    assert refusal.value.code == ErrorCode.INVALID_PARAMS, overrides

    asyncio.run(run())


def test_pipelined_sends_share_blocks(tmp_path: Path) -> None:
    chain = make_chain()

    async def run() -> None:
        async with running_node(chain, make_config(tmp_path)) as (_, client):
            anchor = _bytes(await _deploy_anchor(chain, client))
            txs = [
                signed_tx(chain.sender, to=anchor, data=anchor_call(i.to_bytes(32, "big")))  # type: ignore[arg-type]
                for i in range(60)
            ]
            batch = [
                {
                    "jsonrpc": "2.0",
                    "id": i,
                    "method": "eth_sendRawTransaction",
                    "params": [raw_hex(tx)],
                }
                for i, tx in enumerate(txs)
            ]
            status, replies = await client.post(json.dumps(batch))
            assert status == 200
            assert sorted(r["result"] for r in replies) == sorted("0x" + t.hash.hex() for t in txs)
            receipts = await asyncio.gather(
                *(client.call("eth_getTransactionReceipt", "0x" + t.hash.hex()) for t in txs)
            )
            assert all(r is not None and r["status"] == "0x1" for r in receipts)
            heights = {r["blockNumber"] for r in receipts}
            assert len(heights) < len(txs)
            logs = await client.call("eth_getLogs", {"fromBlock": "0x0"})
            assert len(logs) == len(txs)

    asyncio.run(run())


def test_websocket_subscriptions(tmp_path: Path) -> None:
    chain = make_chain()

    async def run() -> None:
        async with running_node(chain, make_config(tmp_path)) as (node, client):
            anchor = await _deploy_anchor(chain, client)
            async with (
                aiohttp.ClientSession() as session,
                session.ws_connect(f"http://127.0.0.1:{node.port}/ws") as socket,
            ):
                await socket.send_json(
                    {"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe", "params": ["newHeads"]}
                )
                heads_id = (await socket.receive_json())["result"]
                await socket.send_json(
                    {
                        "jsonrpc": "2.0",
                        "id": 2,
                        "method": "eth_subscribe",
                        "params": ["logs", {"address": anchor}],
                    }
                )
                logs_id = (await socket.receive_json())["result"]
                await socket.send_json({"jsonrpc": "2.0", "id": 3, "method": "eth_blockNumber"})
                assert (await socket.receive_json())["id"] == 3
                tx = signed_tx(chain.sender, to=_bytes(anchor), data=anchor_call(b"\x07" * 32))  # type: ignore[arg-type]
                await send_and_wait(client, tx)
                seen: dict[str, Any] = {}
                while len(seen) < 2:
                    message = await asyncio.wait_for(socket.receive_json(), 5)
                    assert message["method"] == "eth_subscription"
                    seen[message["params"]["subscription"]] = message["params"]["result"]
                assert int(seen[heads_id]["number"], 16) >= 2
                assert seen[logs_id]["topics"][1] == "0x" + ("07" * 32)

    asyncio.run(run())


def test_web3_client(tmp_path: Path) -> None:
    """web3.py 7 reads blocks, receipts, logs and calls through its own formatters."""
    web3 = pytest.importorskip("web3")
    chain = make_chain()

    async def run() -> None:
        async with running_node(chain, make_config(tmp_path)) as (node, client):
            anchor = await _deploy_anchor(chain, client)
            tx = signed_tx(chain.sender, to=_bytes(anchor), data=anchor_call(b"\x03" * 32))  # type: ignore[arg-type]
            receipt = await send_and_wait(client, tx)
            w3 = web3.AsyncWeb3(web3.AsyncWeb3.AsyncHTTPProvider(f"http://127.0.0.1:{node.port}/"))
            try:
                assert await w3.eth.chain_id == chain.genesis.chain_id
                block = await w3.eth.get_block("latest", full_transactions=True)
                assert block["number"] == int(receipt["blockNumber"], 16)
                fetched = await w3.eth.get_transaction_receipt(receipt["transactionHash"])
                assert fetched["status"] == 1
                contract = w3.eth.contract(
                    address=web3.Web3.to_checksum_address(anchor),
                    abi=list(load_artifact("Anchor").abi),
                )
                assert await contract.functions.total().call() == 1
                events = await contract.events.Anchored().get_logs(from_block=0)
                assert events[0]["args"]["root"] == b"\x03" * 32
                tx_info = await w3.eth.get_transaction(receipt["transactionHash"])
                assert tx_info["blockNumber"] == block["number"]
                # Nominal, non-zero (clients need a base fee); nothing is charged.
                assert await w3.eth.gas_price == 1
                assert tx_info["gasPrice"] == 0 and fetched["effectiveGasPrice"] == 0
                assert (await w3.eth.fee_history(1, "latest", [50]))["oldestBlock"] >= 0
            finally:
                await w3.provider.disconnect()

    asyncio.run(run())
