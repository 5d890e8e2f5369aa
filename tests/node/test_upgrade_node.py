"""A node process's side of a parameter schedule, in-process on a dev chain: admission refuses
a transaction above the genesis block gas limit until the agreed height and the producer
includes it from there; the node reports its version, build label and schedule; and a node
refuses to start when its schedule holds an entry at a height it has already passed without
it, leaving its data as it was."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest
from node_harness import RpcClient, RpcFailure, make_chain, make_config, raw_hex, signed_tx

from chain.genesis import Genesis
from chain.primitives import Address
from chain.upgrades import ParameterSchedule, Upgrade
from node.daemon import Node
from node.health import software as reported_software
from node.upgrade_schedule import ADOPTED_FILE, UpgradeInPast
from node.version import SoftwareVersion

AGREED_HEIGHT = 3
BETWEEN = 35_000_000
"""Above the genesis limit (30M), within the scheduled one (40M)."""


def _scheduled(genesis: Genesis, height: int) -> Genesis:
    return replace(
        genesis, upgrades=ParameterSchedule((Upgrade(height, "block_gas_limit", 40_000_000),))
    )


async def _included(client: RpcClient, raw: str) -> dict[str, object]:
    """Send ``raw`` and return its receipt (within a generous deadline)."""
    return await _receipt(client, await client.call("eth_sendRawTransaction", raw))


async def _receipt(client: RpcClient, tx_hash: str) -> dict[str, object]:
    """The receipt of ``tx_hash`` once its block is committed (within a generous deadline)."""
    for _ in range(3_000):
        receipt = await client.call("eth_getTransactionReceipt", tx_hash)
        if receipt is not None:
            return dict(receipt)
        await asyncio.sleep(0.02)
    raise AssertionError(f"no receipt for {tx_hash}")


def test_dev_node_applies_the_schedule_and_reports_it(tmp_path: Path) -> None:
    chain = make_chain()
    genesis = _scheduled(chain.genesis, AGREED_HEIGHT)
    build = SoftwareVersion.current({"LIANXIN_BUILD": "r2"}, genesis.upgrades)

    async def scenario() -> None:
        node = Node(make_config(tmp_path), genesis, chain.validator, build)
        port = await node.start()
        try:
            async with aiohttp.ClientSession() as session:
                client = RpcClient(session, f"http://127.0.0.1:{port}/")
                version = await client.call("web3_clientVersion")
                assert version.startswith("lianxin/") and "+r2/python" in version
                described = await client.call("lianxin_getNodeVersion")
                assert described["build"] == "r2"
                assert described["schedule"] == [
                    {"height": "0x3", "parameter": "block_gas_limit", "value": hex(40_000_000)}
                ]
                assert described["scheduleDigest"] == "0x" + genesis.upgrades.digest().hex()
                # What lianxin node status and lianxin net status show.
                shown = await asyncio.to_thread(reported_software, f"http://127.0.0.1:{port}")
                assert shown == {"version": version, "schedule_digest": described["scheduleDigest"]}
                big = signed_tx(chain.deployer, to=Address(bytes(20)), data=b"", gas_limit=BETWEEN)
                for _ in range(AGREED_HEIGHT - 1):
                    # The next height is below the agreed one: refused at admission.
                    with pytest.raises(RpcFailure, match="gas limit 35000000 outside"):
                        await client.call("eth_sendRawTransaction", raw_hex(big))
                    small = signed_tx(
                        chain.deployer, to=Address(bytes(20)), data=b"", gas_limit=50_000
                    )
                    await _included(client, raw_hex(small))
                assert int(await client.call("eth_blockNumber"), 16) == AGREED_HEIGHT - 1
                receipt = await _included(client, raw_hex(big))
                assert int(receipt["blockNumber"], 16) == AGREED_HEIGHT
                assert receipt["status"] == "0x1"
                # Blocks, fee history and calls report the limit of their own height.
                limits = [
                    int((await client.call("eth_getBlockByNumber", hex(h), False))["gasLimit"], 16)
                    for h in (AGREED_HEIGHT - 1, AGREED_HEIGHT)
                ]
                assert limits == [chain.genesis.block_gas_limit, 40_000_000]
                history = await client.call("eth_feeHistory", "0x2", hex(AGREED_HEIGHT), [])
                used = [
                    int(r["gasUsed"], 16)
                    for r in [await client.call("eth_getBlockByNumber", hex(h), False)
                              for h in (AGREED_HEIGHT - 1, AGREED_HEIGHT)]
                ]  # fmt: skip
                assert history["gasUsedRatio"] == [
                    used[0] / chain.genesis.block_gas_limit,
                    used[1] / 40_000_000,
                ]
                pending = await client.call("eth_getBlockByNumber", "pending", False)
                assert int(pending["gasLimit"], 16) == 40_000_000
                # GASLIMIT as a call at the agreed height sees it: code with no recipient runs
                # as init code, and what it returns is the answer (GASLIMIT, MSTORE at 0,
                # RETURN 32 bytes).
                answer = await client.call(
                    "eth_call", {"data": "0x4560005260206000f3"}, hex(AGREED_HEIGHT)
                )
                assert int(answer, 16) == 40_000_000
        finally:
            await node.stop()

    asyncio.run(scenario())


def test_a_schedule_entry_below_the_head_refuses_the_start(tmp_path: Path) -> None:
    chain = make_chain()

    async def grow_then_restart() -> None:
        node = Node(make_config(tmp_path), chain.genesis, chain.validator)
        await node.start()
        try:
            assert node.producer is not None
            for _ in range(3):
                await node.producer.produce_once()
        finally:
            await node.stop()
        late = Node(make_config(tmp_path), _scheduled(chain.genesis, 2), chain.validator)
        with pytest.raises(UpgradeInPast, match="at or below this node's head 3"):
            await late.start()
        assert late.ledger is None
        assert not (tmp_path / ADOPTED_FILE).exists()
        # The same schedule with a height above the head is taken on.
        ahead = Node(make_config(tmp_path), _scheduled(chain.genesis, 4), chain.validator)
        await ahead.start()
        await ahead.stop()
        assert (tmp_path / ADOPTED_FILE).exists()

    asyncio.run(grow_then_restart())


def test_dev_producer_defers_what_exceeds_the_block_gas_limit_of_the_height(
    tmp_path: Path,
) -> None:
    """Two transactions of 20M gas each, arriving together, do not fit in one block of the
    30M limit (40M from height 3): the second waits for the next block instead of being
    dropped as inapplicable; from height 3 both fit in one."""
    chain = make_chain()
    genesis = _scheduled(chain.genesis, AGREED_HEIGHT)

    def pair() -> list[str]:
        return [
            raw_hex(
                signed_tx(chain.deployer, to=Address(bytes(20)), data=b"", gas_limit=20_000_000)
            )
            for _ in range(2)
        ]

    async def scenario() -> None:
        node = Node(make_config(tmp_path), genesis, chain.validator)
        port = await node.start()
        try:
            assert node.mempool is not None
            async with aiohttp.ClientSession() as session:
                client = RpcClient(session, f"http://127.0.0.1:{port}/")
                for expected in ([1, 2], [3, 3]):
                    raws = pair()
                    # Both admitted before the producer runs again: taken together.
                    hashes = [node.mempool.submit(bytes.fromhex(r[2:])).hash for r in raws]
                    blocks = [
                        int((await _receipt(client, "0x" + h.hex()))["blockNumber"], 16)
                        for h in hashes
                    ]
                    assert blocks == expected
        finally:
            await node.stop()

    asyncio.run(scenario())
