"""Mempool admission: every refusal answers its own JSON-RPC error code with details, and a
refused transaction never reaches a block."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from pathlib import Path

import pytest
from node_harness import (
    CHAIN_ID,
    DevChain,
    RpcClient,
    RpcFailure,
    make_chain,
    make_config,
    raw_hex,
    running_node,
    send_and_wait,
    signed_tx,
)

from chain.types import Transaction
from chain.validation import DuplicateNonce, TxRules
from node.mempool import Mempool, MempoolFull, Outcome, Permissions
from node.rpc.errors import ErrorCode
from node.storage.mempool_store import MempoolStore

TARGET = b"\x42" * 20


def _refusals(chain: DevChain) -> list[tuple[str, ErrorCode, str]]:
    """(raw hex, expected code, expected ``data.reason``) for each refusal."""
    good = signed_tx(chain.sender, to=TARGET, data=b"")  # type: ignore[arg-type]
    other = signed_tx(chain.sender, to=TARGET, data=b"\x01")  # type: ignore[arg-type]
    forged = dataclasses.replace(good, signature=other.signature)
    return [
        ("0x1234", ErrorCode.TX_BAD_ENCODING, "BadEncoding"),
        (raw_hex(good)[:-2], ErrorCode.TX_BAD_ENCODING, "BadEncoding"),
        (raw_hex(forged), ErrorCode.TX_BAD_SIGNATURE, "BadSignature"),
        (
            raw_hex(signed_tx(chain.sender, to=TARGET, data=b"", chain_id=CHAIN_ID + 1)),  # type: ignore[arg-type]
            ErrorCode.TX_WRONG_CHAIN_ID,
            "WrongChainId",
        ),
        (
            raw_hex(signed_tx(chain.sender, to=TARGET, data=b"", block_limit=0)),  # type: ignore[arg-type]
            ErrorCode.TX_EXPIRED,
            "TransactionExpired",
        ),
        (
            raw_hex(signed_tx(chain.sender, to=TARGET, data=b"", block_limit=10**6)),  # type: ignore[arg-type]
            ErrorCode.TX_BLOCK_LIMIT_TOO_FAR,
            "BlockLimitTooFar",
        ),
        (
            raw_hex(signed_tx(chain.sender, to=TARGET, data=bytes(130 * 1024))),  # type: ignore[arg-type]
            ErrorCode.TX_OVERSIZE,
            "OversizeData",
        ),
        (
            "0x" + "00" * (170 * 1024),
            ErrorCode.TX_OVERSIZE,
            "OversizeTransaction",
        ),
        (
            # Within the data bound, but init code above EIP-3860's 49,152 bytes.
            raw_hex(signed_tx(chain.deployer, to=None, data=bytes(49_153), gas_limit=10**7)),
            ErrorCode.TX_OVERSIZE,
            "OversizeInitCode",
        ),
        (
            raw_hex(signed_tx(chain.outsider, to=TARGET, data=b"")),  # type: ignore[arg-type]
            ErrorCode.TX_NOT_PERMITTED,
            "NotPermitted",
        ),
        (
            raw_hex(signed_tx(chain.sender, to=None, data=b"\x00")),
            ErrorCode.TX_NOT_PERMITTED,
            "NotPermitted",
        ),
        (
            raw_hex(signed_tx(chain.sender, to=TARGET, data=b"", gas_limit=1_000)),  # type: ignore[arg-type]
            ErrorCode.TX_BAD_GAS_LIMIT,
            "GasLimitOutOfRange",
        ),
        (
            raw_hex(signed_tx(chain.sender, to=TARGET, data=b"", gas_limit=10**9)),  # type: ignore[arg-type]
            ErrorCode.TX_BAD_GAS_LIMIT,
            "GasLimitOutOfRange",
        ),
    ]


async def _expect_refusal(client: RpcClient, raw: str, code: ErrorCode, reason: str) -> None:
    with pytest.raises(RpcFailure) as refused:
        await client.call("eth_sendRawTransaction", raw)
    assert refused.value.code == code, (reason, refused.value.message)
    assert refused.value.data["refusal"] == reason
    assert refused.value.data["txHash"].startswith("0x")


def test_every_refusal_has_its_code(tmp_path: Path) -> None:
    chain = make_chain()

    async def run() -> None:
        async with running_node(chain, make_config(tmp_path)) as (node, client):
            for raw, code, reason in _refusals(chain):
                await _expect_refusal(client, raw, code, reason)
            # Nothing refused reached a block.
            assert await client.call("eth_blockNumber") == "0x0"
            assert len(node.mempool or ()) == 0

            accepted = signed_tx(chain.sender, to=TARGET, data=b"")  # type: ignore[arg-type]
            receipt = await send_and_wait(client, accepted)
            assert receipt["status"] == "0x1"
            # The same transaction again, and another one reusing its nonce.
            await _expect_refusal(
                client, raw_hex(accepted), ErrorCode.TX_DUPLICATE, "DuplicateNonce"
            )
            reuse = signed_tx(chain.sender, to=TARGET, data=b"\x02", nonce=accepted.nonce)  # type: ignore[arg-type]
            await _expect_refusal(client, raw_hex(reuse), ErrorCode.TX_DUPLICATE, "DuplicateNonce")
            assert await client.call("eth_getTransactionReceipt", "0x" + reuse.hash.hex()) is None

    asyncio.run(run())


def test_pool_duplicates_and_full_pool(tmp_path: Path) -> None:
    """Without a validator key nothing is produced, so the pool fills up."""
    chain = make_chain()

    async def run() -> None:
        config = make_config(tmp_path, mempool_size=2, receipt_wait_ms=0)
        from node.daemon import Node

        node = Node(config, chain.genesis, None)
        port = await node.start()
        try:
            import aiohttp

            async with aiohttp.ClientSession() as session:
                client = RpcClient(session, f"http://127.0.0.1:{port}/")
                first = signed_tx(chain.sender, to=TARGET, data=b"")  # type: ignore[arg-type]
                await client.call("eth_sendRawTransaction", raw_hex(first))
                pending = await client.call("eth_getTransactionByHash", "0x" + first.hash.hex())
                assert pending["blockNumber"] is None
                await _expect_refusal(
                    client, raw_hex(first), ErrorCode.TX_DUPLICATE, "DuplicateNonce"
                )
                second = signed_tx(chain.sender, to=TARGET, data=b"\x01")  # type: ignore[arg-type]
                await client.call("eth_sendRawTransaction", raw_hex(second))
                third = signed_tx(chain.sender, to=TARGET, data=b"\x02")  # type: ignore[arg-type]
                await _expect_refusal(
                    client, raw_hex(third), ErrorCode.TX_MEMPOOL_FULL, "MempoolFull"
                )
                assert (
                    await client.call("eth_getTransactionReceipt", "0x" + first.hash.hex()) is None
                )
        finally:
            await node.stop()

    asyncio.run(run())


def _unit_pool(chain: DevChain, capacity: int) -> Mempool:
    return Mempool(
        TxRules(CHAIN_ID),
        Permissions.from_genesis(chain.genesis),
        capacity=capacity,
        nonce_committed=lambda nonce: False,
        next_height=lambda: 1,
    )


def _tx(chain: DevChain, nonce: bytes | None = None) -> Transaction:
    return signed_tx(chain.sender, to=TARGET, data=os.urandom(4), nonce=nonce)  # type: ignore[arg-type]


def test_pool_take_settle_and_waiters() -> None:
    chain = make_chain()
    pool = _unit_pool(chain, capacity=3)
    woken: list[int] = []
    pool.on_arrival(lambda: woken.append(1))
    first, second = _tx(chain), _tx(chain)
    pool.submit(first.encode())
    pool.submit(second.encode())
    assert woken == [1, 1]
    with pytest.raises(DuplicateNonce):
        pool.submit(_tx(chain, nonce=first.nonce).encode())
    taken = pool.take(1)
    assert taken == [first]
    # A taken transaction still blocks its nonce until settled.
    with pytest.raises(DuplicateNonce):
        pool.add(_tx(chain, nonce=first.nonce))
    pool.add(_tx(chain))
    with pytest.raises(MempoolFull):
        pool.add(_tx(chain))

    async def wait() -> Outcome:
        waiter = pool.waiter(first.hash)
        assert waiter is not None
        pool.settle({first.hash: Outcome(7)})
        return await waiter

    assert asyncio.run(wait()).height == 7
    assert pool.get(first.hash) is None
    pool.settle({tx.hash: Outcome(8) for tx in pool.take(2)})
    assert len(pool) == 0
    pool.add(_tx(chain, nonce=first.nonce))
    expired = dataclasses.replace(_tx(chain), block_limit=1)
    pool.add(expired)
    assert pool.drop_expired(2) == [expired]


def test_settling_a_committed_block_tells_each_waiter_its_position() -> None:
    """Both block makers (the dev producer and consensus) settle a block's transactions with
    their positions, which the receipt of a waiting client is built from."""
    chain = make_chain()
    pool = _unit_pool(chain, capacity=3)
    txs = [_tx(chain) for _ in range(3)]
    for tx in txs:
        pool.submit(tx.encode())

    async def wait() -> list[Outcome]:
        waiters = [pool.waiter(tx.hash) for tx in txs]
        pool.settle_committed(9, pool.take(3))
        return [await waiter for waiter in waiters if waiter is not None]

    assert asyncio.run(wait()) == [Outcome(9, index=i) for i in range(3)]
    assert len(pool) == 0


def _stored_pool(
    chain: DevChain, path: Path, *, committed: set[bytes] | None = None, height: int = 1
) -> Mempool:
    done = committed or set()
    return Mempool(
        TxRules(CHAIN_ID),
        Permissions.from_genesis(chain.genesis),
        capacity=100,
        nonce_committed=lambda nonce: nonce in done,
        next_height=lambda: height,
        store=MempoolStore.open(path),
    )


def test_the_pool_is_bounded_in_bytes_and_refuses_at_admission() -> None:
    chain = make_chain()
    first = _tx(chain)
    pool = Mempool(
        TxRules(CHAIN_ID),
        Permissions.from_genesis(chain.genesis),
        capacity=100,
        nonce_committed=lambda nonce: False,
        next_height=lambda: 1,
        max_bytes=len(first.encode()) + 10,
    )
    pool.add(first)
    with pytest.raises(MempoolFull, match="bytes"):
        pool.add(_tx(chain))
    pool.settle({first.hash: Outcome(1)})
    pool.add(_tx(chain))


def test_accepted_transactions_survive_a_restart_rechecked(tmp_path: Path) -> None:
    chain = make_chain()
    pool = _stored_pool(chain, tmp_path / "mempool")
    kept, settled, committed_meanwhile = (_tx(chain) for _ in range(3))
    expiring = signed_tx(chain.sender, to=TARGET, data=b"\x07", block_limit=3)  # type: ignore[arg-type]
    for tx in (kept, settled, committed_meanwhile, expiring):
        pool.add(tx)
    pool.take(2)  # in a block being decided when the node stops: still the pool's
    pool.settle({settled.hash: Outcome(1)})
    pool.close()

    # Restarted at height 5: one was committed by the others meanwhile, one expired.
    restarted = _stored_pool(
        chain, tmp_path / "mempool", committed={committed_meanwhile.nonce}, height=5
    )
    report = restarted.restore()
    assert report.restored == 1
    assert {tx_hash for tx_hash, _ in report.refused} == {committed_meanwhile.hash, expiring.hash}
    assert list(restarted.pending()) == [kept]
    restarted.settle({kept.hash: Outcome(5)})
    restarted.close()
    # What was settled or refused is gone from the store for good.
    assert _stored_pool(chain, tmp_path / "mempool", height=5).restore().restored == 0
