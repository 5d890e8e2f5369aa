"""The dev chain's RPC in-process: accounts held unlocked (signing, automine, refusals), the
evm_* helpers, the transaction shape, the added methods, and the execution-apis semantics of
log ranges, wildcard topics and the ``pending`` tag."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from eth_utils import keccak
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
    signed_tx,
)

from chain.crypto import PublicKey
from chain.types import Transaction
from contracts.artifacts import load_artifact
from node.chain_dir import save_key, write_private
from node.daemon import Node
from node.dev_accounts import DevAccounts, DevAccountsError, eip191_message
from node.rpc.errors import ErrorCode, InvalidParams
from node.rpc.typed_data import typed_data_digest

PASSWORD = b"dev password"
TYPED_DATA: dict[str, Any] = {
    "types": {
        "EIP712Domain": [
            {"name": "name", "type": "string"},
            {"name": "chainId", "type": "uint256"},
        ],
        "Mail": [{"name": "contents", "type": "string"}],
    },
    "primaryType": "Mail",
    "domain": {"name": "lianxin", "chainId": 2024},
    "message": {"contents": "hello"},
}


def _dev_keys(chain: DevChain, root: Path) -> Path:
    """Keystores of the chain's deployer ("admin") and sender ("dept-b") in ``root/keys``,
    and one ("other") under another password."""
    keys = root / "keys"
    save_key(keys / "admin.json", chain.deployer, PASSWORD, iterations=1024)
    save_key(keys / "dept-b.json", chain.sender, PASSWORD, iterations=1024)
    save_key(keys / "other.json", chain.outsider, b"not the password", iterations=1024)
    write_private(root / "password", PASSWORD + b"\n")
    return keys


@asynccontextmanager
async def dev_node(tmp_path: Path) -> AsyncIterator[tuple[DevChain, RpcClient]]:
    chain = make_chain()
    config = make_config(
        tmp_path,
        dev_accounts_dir=_dev_keys(chain, tmp_path),
        validator_password_file=tmp_path / "password",
        receipt_wait_ms=0,
    )
    async with running_node(chain, config) as (_, client):
        yield chain, client


async def _refused(client: RpcClient, code: int, method: str, *params: Any) -> RpcFailure:
    with pytest.raises(RpcFailure) as caught:
        await client.call(method, *params)
    assert caught.value.code == code, caught.value
    return caught.value


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


def test_dev_accounts_sign_send_and_automine(tmp_path: Path) -> None:
    async def run() -> None:
        async with dev_node(tmp_path) as (chain, client):
            admin, dept_b = (
                _hex(chain.deployer.public_key.address),
                _hex(chain.sender.public_key.address),
            )
            other = _hex(chain.outsider.public_key.address)
            assert await client.call("eth_accounts") == [admin, dept_b, other]
            await _refused(client, ErrorCode.UNKNOWN_ACCOUNT, "eth_sign", other, "0x00")
            bytecode = _hex(load_artifact("Anchor").bytecode)
            # No gas given: estimated. The answer comes once the block is committed.
            deploy = await client.call("eth_sendTransaction", {"from": admin, "data": bytecode})
            receipt = await client.call("eth_getTransactionReceipt", deploy)
            assert receipt is not None and receipt["status"] == "0x1"
            tx = await client.call("eth_getTransactionByHash", deploy)
            assert tx["nonce"] == "0x0" and len(tx["replayNonce"]) == 66
            assert tx["v"] == hex(2024 * 2 + 35) and tx["r"] == tx["s"] == "0x0"
            # Ethereum's CREATE address of (sender, nonce 0).
            creator = b"\xd6\x94" + chain.deployer.public_key.address + b"\x80"
            assert receipt["contractAddress"] == _hex(keccak(creator)[-20:])
            anchor = receipt["contractAddress"]

            call = {"from": admin, "to": anchor, "data": _hex(anchor_call(b"\x01" * 32))}
            await _refused(
                client, ErrorCode.INVALID_PARAMS, "eth_sendTransaction", {**call, "nonce": "0x5"}
            )
            sent = await client.call("eth_sendTransaction", {**call, "nonce": "0x1"})
            assert (await client.call("eth_getTransactionByHash", sent))["nonce"] == "0x1"
            stranger = {**call, "from": _hex(b"\x09" * 20)}
            await _refused(client, ErrorCode.UNKNOWN_ACCOUNT, "eth_sendTransaction", stranger)

            raw = await client.call(
                "eth_signTransaction", {**call, "from": dept_b, "gas": "0x30000"}
            )
            signed = Transaction.decode(bytes.fromhex(raw[2:]))
            assert signed.public_key == chain.sender.public_key.to_bytes()
            assert await client.call("eth_sendRawTransaction", raw) == _hex(signed.hash)
            assert await client.call("eth_getRawTransactionByHash", _hex(signed.hash)) == raw

            key = PublicKey.from_bytes(chain.deployer.public_key.to_bytes())
            signature = await client.call("eth_sign", admin, "0x68656c6c6f")
            key.verify(bytes.fromhex(signature[2:]), eip191_message(b"hello"))
            signature = await client.call("personal_sign", "0x68656c6c6f", admin)
            key.verify(bytes.fromhex(signature[2:]), eip191_message(b"hello"))
            signature = await client.call("eth_signTypedData_v4", admin, TYPED_DATA)
            key.verify(bytes.fromhex(signature[2:]), typed_data_digest(TYPED_DATA))
            broken = {**TYPED_DATA, "primaryType": "Missing"}
            await _refused(client, ErrorCode.INVALID_PARAMS, "eth_signTypedData_v4", admin, broken)

    asyncio.run(run())


def test_evm_helpers_on_a_dev_chain(tmp_path: Path) -> None:
    async def run() -> None:
        async with dev_node(tmp_path) as (_, client):
            assert await client.call("evm_mine") == "0x0"
            before = await client.call("eth_getBlockByNumber", "latest", False)
            assert before["number"] == "0x1" and before["transactions"] == []
            assert await client.call("evm_increaseTime", 3600) == 3600
            assert await client.call("evm_mine") == "0x0"
            mined = await client.call("eth_getBlockByNumber", "latest", False)
            assert int(mined["number"], 16) == int(before["number"], 16) + 1
            assert int(mined["timestamp"], 16) >= int(before["timestamp"], 16) + 3600

            target = int(mined["timestamp"], 16) + 86_400
            assert await client.call("evm_setNextBlockTimestamp", target) is None
            await client.call("evm_mine")
            dated = await client.call("eth_getBlockByNumber", "latest", False)
            assert int(dated["timestamp"], 16) == target
            await _refused(
                client, ErrorCode.INVALID_PARAMS, "evm_setNextBlockTimestamp", target - 10
            )
            mined = dated

            unchanged = await client.call("evm_snapshot")
            assert await client.call("evm_revert", unchanged) is True
            assert await client.call("evm_revert", unchanged) is False
            passed = await client.call("evm_snapshot")
            await client.call("evm_mine")
            # Across a committed block (tests/node/test_dev_rewind_rpc.py says more).
            assert await client.call("evm_revert", passed) is True
            assert await client.call("eth_blockNumber") == mined["number"]

    asyncio.run(run())


def test_a_node_without_dev_accounts_refuses_to_sign(tmp_path: Path) -> None:
    chain = make_chain()

    async def run() -> None:
        async with running_node(chain, make_config(tmp_path)) as (_, client):
            assert await client.call("eth_accounts") == []
            address = _hex(chain.deployer.public_key.address)
            for method, params in (
                ("eth_sendTransaction", [{"from": address, "data": "0x"}]),
                ("eth_signTransaction", [{"from": address, "data": "0x"}]),
                ("eth_sign", [address, "0x00"]),
                ("eth_signTypedData_v4", [address, TYPED_DATA]),
                ("evm_mine", []),
                ("evm_snapshot", []),
            ):
                await _refused(client, ErrorCode.DEV_ONLY, method, *params)

    asyncio.run(run())
    with pytest.raises(DevAccountsError, match="single-validator"):
        DevAccounts.open(_dev_keys(chain, tmp_path / "net"), PASSWORD, validators=4)


@asynccontextmanager
async def idle_node(chain: DevChain, tmp_path: Path) -> AsyncIterator[RpcClient]:
    """A node that produces no blocks (no validator key): what is sent stays pending."""
    node = Node(make_config(tmp_path, receipt_wait_ms=0), chain.genesis, None)
    port = await node.start()
    try:
        async with aiohttp.ClientSession() as session:
            yield RpcClient(session, f"http://127.0.0.1:{port}/")
    finally:
        await node.stop()


def test_pending_tag_and_pending_filter(tmp_path: Path) -> None:
    chain = make_chain()
    sender = _hex(chain.deployer.public_key.address)

    async def run() -> None:
        async with idle_node(chain, tmp_path) as client:
            watch = await client.call("eth_newPendingTransactionFilter")
            txs = [signed_tx(chain.deployer, to=b"\x05" * 20, data=b"") for _ in range(2)]  # type: ignore[arg-type]
            for tx in txs:
                await client.call("eth_sendRawTransaction", raw_hex(tx))
            assert await client.call("eth_getTransactionCount", sender, "latest") == "0x0"
            assert await client.call("eth_getTransactionCount", sender, "pending") == "0x2"
            pending = await client.call("eth_getBlockByNumber", "pending", True)
            assert pending["number"] == "0x1" and pending["hash"] is None
            assert [t["nonce"] for t in pending["transactions"]] == ["0x0", "0x1"]
            second = await client.call("eth_getTransactionByHash", _hex(txs[1].hash))
            assert second["nonce"] == "0x1" and second["blockNumber"] is None
            assert await client.call("eth_getBlockTransactionCountByNumber", "pending") == "0x2"
            raw = await client.call("eth_getRawTransactionByBlockNumberAndIndex", "pending", "0x1")
            assert raw == raw_hex(txs[1])
            assert await client.call("eth_getFilterChanges", watch) == [_hex(t.hash) for t in txs]
            assert await client.call("eth_getFilterChanges", watch) == []

    asyncio.run(run())


def test_log_ranges_topics_and_block_methods(tmp_path: Path) -> None:
    chain = make_chain()

    async def run() -> None:
        async with running_node(chain, make_config(tmp_path)) as (_, client):
            deploy = signed_tx(chain.deployer, to=None, data=load_artifact("Anchor").bytecode)
            await client.call("eth_sendRawTransaction", raw_hex(deploy))
            receipt = await client.call("eth_getTransactionReceipt", _hex(deploy.hash))
            anchor = bytes.fromhex(receipt["contractAddress"][2:])
            call = signed_tx(chain.sender, to=anchor, data=anchor_call(b"\x02" * 32))  # type: ignore[arg-type]
            await client.call("eth_sendRawTransaction", raw_hex(call))
            landed = await client.call("eth_getTransactionReceipt", _hex(call.hash))
            height = landed["blockNumber"]

            await _refused(
                client,
                ErrorCode.INVALID_PARAMS,
                "eth_getLogs",
                {"fromBlock": height, "toBlock": "0x1"},
            )
            # Anchored has three topics (signature, root, sender).
            three = await client.call("eth_getLogs", {"fromBlock": "0x0", "topics": [None] * 3})
            assert [log["topics"][0] for log in three] == [_hex(ANCHORED_TOPIC)]
            assert (
                await client.call("eth_getLogs", {"fromBlock": "0x0", "topics": [None] * 4}) == []
            )

            by_index = await client.call("eth_getTransactionByBlockNumberAndIndex", height, "0x0")
            block = await client.call("eth_getBlockByNumber", height, False)
            by_hash = await client.call(
                "eth_getTransactionByBlockHashAndIndex", block["hash"], "0x0"
            )
            assert by_index == by_hash and by_index["hash"] == _hex(call.hash)
            assert by_index["nonce"] == "0x0"
            assert (
                await client.call("eth_getTransactionByBlockNumberAndIndex", height, "0x9") is None
            )
            receipts = await client.call("eth_getBlockReceipts", height)
            assert [r["transactionHash"] for r in receipts] == [_hex(call.hash)]
            assert await client.call("eth_getBlockReceipts", "0xffff") is None
            assert block["baseFeePerGas"] == "0x1"
            history = await client.call("eth_feeHistory", "0x2", "latest", [25, 75])
            assert history["baseFeePerGas"] == ["0x1"] * 3
            assert history["gasUsedRatio"][-1] > 0
            await _refused(
                client, ErrorCode.INVALID_PARAMS, "eth_feeHistory", "0x1", "latest", [101]
            )

    asyncio.run(run())


def test_a_block_hash_string_names_a_block(tmp_path: Path) -> None:
    """A 32-byte hash is a block parameter (execution-apis ``BlockNumberOrTagOrHash``, what
    web3.py sends for ``get_block_receipts(hash)`` and state reads at a hash), besides the
    EIP-1898 object; where a number or tag is expected it stays refused."""
    chain = make_chain()

    async def run() -> None:
        async with running_node(chain, make_config(tmp_path)) as (_, client):
            deploy = signed_tx(chain.deployer, to=None, data=load_artifact("Anchor").bytecode)
            await client.call("eth_sendRawTransaction", raw_hex(deploy))
            receipt = await client.call("eth_getTransactionReceipt", _hex(deploy.hash))
            block_hash, anchor = receipt["blockHash"], receipt["contractAddress"]
            receipts = await client.call("eth_getBlockReceipts", block_hash)
            assert [r["transactionHash"] for r in receipts] == [_hex(deploy.hash)]
            assert await client.call("eth_getBlockReceipts", _hex(b"\xde" * 32)) is None
            genesis = (await client.call("eth_getBlockByNumber", "0x0", False))["hash"]
            assert await client.call("eth_getCode", anchor, genesis) == "0x"
            assert await client.call("eth_getCode", anchor, block_hash) != "0x"
            deployer = _hex(chain.deployer.public_key.address)
            assert await client.call("eth_getTransactionCount", deployer, block_hash) == "0x1"
            total = {"to": anchor, "data": _hex(TOTAL_SELECTOR)}
            assert int(await client.call("eth_call", total, block_hash), 16) == 0
            await _refused(
                client, ErrorCode.NOT_FOUND, "eth_getBalance", deployer, _hex(b"\xde" * 32)
            )
            await _refused(client, ErrorCode.INVALID_PARAMS, "eth_getBlockByNumber", genesis, False)
            await _refused(
                client,
                ErrorCode.INVALID_PARAMS,
                "eth_getBalance",
                deployer,
                {"blockNumber": genesis},
            )
            await _refused(client, ErrorCode.INVALID_PARAMS, "eth_getLogs", {"fromBlock": genesis})

    asyncio.run(run())


def test_raw_transactions_by_block_and_index(tmp_path: Path) -> None:
    """eth_getRawTransactionByBlockNumberAndIndex / ByBlockHashAndIndex (geth's, what
    web3.py's get_raw_transaction_by_block calls): the canonical encoding, or null past the
    block's transactions or for an unknown block."""
    chain = make_chain()

    async def run() -> None:
        async with running_node(chain, make_config(tmp_path)) as (_, client):
            tx = signed_tx(chain.deployer, to=b"\x05" * 20, data=b"")  # type: ignore[arg-type]
            await client.call("eth_sendRawTransaction", raw_hex(tx))
            receipt = await client.call("eth_getTransactionReceipt", _hex(tx.hash))
            number, block_hash = receipt["blockNumber"], receipt["blockHash"]
            by_number = "eth_getRawTransactionByBlockNumberAndIndex"
            by_hash = "eth_getRawTransactionByBlockHashAndIndex"
            for method, block in (
                (by_number, number),
                (by_number, "latest"),
                (by_hash, block_hash),
            ):
                assert await client.call(method, block, "0x0") == raw_hex(tx)
                assert await client.call(method, block, "0x1") is None
            assert await client.call(by_number, "0x11f71fb0aef", "0x0") is None
            assert await client.call(by_hash, _hex(b"\xde" * 32), "0x0") is None
            await _refused(client, ErrorCode.INVALID_PARAMS, by_hash, number, "0x0")
            await _refused(client, ErrorCode.INVALID_PARAMS, by_number, number, 0)

    asyncio.run(run())


def test_uncle_counts_and_the_blob_base_fee(tmp_path: Path) -> None:
    """Methods of the execution-apis spec with a fixed answer here: no block has uncles
    (0, null for an unknown block) and the blob base fee is EIP-4844's least (1 wei)."""
    chain = make_chain()

    async def run() -> None:
        async with running_node(chain, make_config(tmp_path)) as (_, client):
            genesis = (await client.call("eth_getBlockByNumber", "0x0", False))["hash"]
            by_hash, by_number = "eth_getUncleCountByBlockHash", "eth_getUncleCountByBlockNumber"
            assert await client.call(by_hash, genesis) == "0x0"
            assert await client.call(by_hash, _hex(b"\xde" * 32)) is None
            for block in ("0x0", "latest", "pending", "earliest"):
                assert await client.call(by_number, block) == "0x0"
            assert await client.call(by_number, "0x9") is None
            await _refused(client, ErrorCode.INVALID_PARAMS, by_hash, "0x0")
            assert await client.call("eth_blobBaseFee") == "0x1"
            await _refused(client, ErrorCode.INVALID_PARAMS, "eth_blobBaseFee", "latest")

    asyncio.run(run())


def test_typed_data_with_a_fixed_array_of_another_length_is_refused() -> None:
    """``T[n]`` must hold n items (EIP-712); eth_account hashes the items whatever their
    number, so the node checks, nested arrays and structs included, before signing."""
    document: dict[str, Any] = {
        "types": {
            "EIP712Domain": [{"name": "name", "type": "string"}],
            "Person": [{"name": "name", "type": "string"}, {"name": "tags", "type": "uint8[2][]"}],
            "Mail": [{"name": "from", "type": "Person"}, {"name": "to", "type": "Person[2]"}],
        },
        "primaryType": "Mail",
        "domain": {"name": "lianxin"},
        "message": {
            "from": {"name": "Cow", "tags": [[1, 2]]},
            "to": [{"name": "Bob", "tags": []}, {"name": "Eve", "tags": [[3, 4], [5, 6]]}],
        },
    }
    assert len(typed_data_digest(document)) == 32
    one_recipient = {**document, "message": {**document["message"], "to": [{"name": "Bob"}]}}
    with pytest.raises(InvalidParams, match=r"Expected 2 items for array type Person\[2\], got 1"):
        typed_data_digest(one_recipient)
    short_tag = {"name": "Cow", "tags": [[1, 2], [3]]}
    nested = {**document, "message": {**document["message"], "from": short_tag}}
    with pytest.raises(InvalidParams, match=r"Expected 2 items for array type uint8\[2\], got 1"):
        typed_data_digest(nested)
