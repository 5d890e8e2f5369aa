"""Block rules on four real validator processes (``lianxin net init/start``):

- Under load that once halted the chain (36 accepted transactions of 128 KiB calldata sent
  while two validators are paused): every proposer builds blocks within genesis
  ``max_block_bytes``, the chain goes on once they resume, and every accepted transaction
  gets a receipt.
- A restart of the whole network keeps accepted, uncommitted transactions: each node pools
  them again from its mempool store, and they are committed after the restart.
- A Byzantine validator (this test, holding a stopped validator's real key, on the real p2p)
  proposes a block that includes a frozen sender's transaction: the honest validators refuse
  it (nil prevote), the chain goes on without it, and the transaction is never committed.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest
from e2e_harness import run_cli
from net_harness import Net, assert_agreement, new_net, start_net, wait_until

from chain.consensus import Proposal, encode_message
from chain.crypto import PrivateKey
from chain.limits import MAX_TX_DATA_BYTES
from chain.primitives import Address, Hash32
from chain.types import Block, Transaction
from chain.validation import sign_transaction
from contracts.permissions import PERMISSIONS_ADDRESS, freeze_call
from node.chain_dir import load_key
from node.config import load_config
from node.daemon import load_genesis
from node.ledger import Ledger
from node.p2p import FrameKind, Network, transport_settings
from node.rpc_client import RpcError, rpc_call

pytestmark = [pytest.mark.e2e, pytest.mark.network]

VALIDATORS = 4
BIG_TXS = 36
RESTART_TXS = 6
RECEIPTS_TIMEOUT_S = 120.0


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    # The Byzantine validator below is this test, with its node process stopped: the
    # rotation must keep its turns, as it would for a Byzantine validator that keeps
    # signing, rather than pass over a validator that looks down.
    root = tmp_path_factory.mktemp("blockrules") / "net"
    with new_net(root, VALIDATORS, options={"skip_absent_proposers": False}) as network:
        start_net(network)
        yield network


def _account(net: Net, name: str) -> PrivateKey:
    return load_key(net.root / "keys" / f"{name}.json", net.password)


def _signed(net: Net, key: PrivateKey, *, to: bytes, data: bytes, gas_limit: int) -> Transaction:
    unsigned = Transaction(
        chain_id=int(rpc_call(net.url(0), "eth_chainId", []), 16),
        nonce=Hash32(os.urandom(32)),
        block_limit=net.head(0) + 900,
        to=Address(to),
        value=0,
        data=data,
        gas_limit=gas_limit,
        public_key=key.public_key.to_bytes(),
    )
    return sign_transaction(unsigned, key)


def _send(net: Net, index: int, tx: Transaction) -> str | None:
    """The hash the node answers, or ``None`` if it refused the transaction."""
    try:
        answer = rpc_call(
            net.url(index), "eth_sendRawTransaction", ["0x" + tx.encode().hex()], timeout=10
        )
    except RpcError:
        return None
    return str(answer)


def _receipt(net: Net, index: int, tx_hash: str) -> dict[str, Any] | None:
    found = rpc_call(net.url(index), "eth_getTransactionReceipt", [tx_hash], timeout=5)
    return None if found is None else dict(found)


def _big(net: Net, key: PrivateKey, seed: int) -> Transaction:
    """A transaction with 128 KiB of calldata, mostly zero bytes (4 gas each), so that gas
    lets all 36 into one block and only the byte limit splits them."""
    data = seed.to_bytes(4, "big") + bytes(MAX_TX_DATA_BYTES - 4)
    return _signed(net, key, to=bytes(20), data=data, gas_limit=600_000)


def _wait_receipts(net: Net, nodes: list[int], hashes: list[str]) -> None:
    def all_receipts() -> bool:
        return all(_receipt(net, i, h) is not None for i in nodes for h in hashes)

    wait_until(f"receipts of {len(hashes)} transactions", all_receipts, RECEIPTS_TIMEOUT_S)


def _signal(net: Net, nodes: list[int], sig: signal.Signals) -> None:
    for index in nodes:
        os.kill(net.pid(index), sig)


def test_big_transactions_sent_while_two_validators_pause_are_all_committed(net: Net) -> None:
    everyone = list(range(VALIDATORS))
    wait_until("first blocks", lambda: min(net.head(i) for i in everyone) >= 2)
    sender = _account(net, "dept-a")
    _signal(net, [2, 3], signal.SIGSTOP)
    try:
        accepted = [
            h for n in range(BIG_TXS) if (h := _send(net, n % 2, _big(net, sender, n))) is not None
        ]
    finally:
        _signal(net, [2, 3], signal.SIGCONT)
    assert len(accepted) == BIG_TXS
    _wait_receipts(net, everyone, accepted)
    heights = {int(_receipt(net, 0, h)["blockNumber"], 16) for h in accepted}  # type: ignore[index]
    assert len(heights) > 1  # over 4 MiB of transactions: never one block
    for index in everyone:
        counters = net.status(index)["counters"]
        assert counters.get("p2p_oversize_frame", 0) == 0, counters
    assert_agreement(net, everyone)


def test_a_whole_network_restart_keeps_accepted_transactions(net: Net) -> None:
    everyone = list(range(VALIDATORS))
    sender = _account(net, "dept-a")
    # Two validators down: no quorum, so what 0 and 1 accept stays pending.
    run_cli("net", "stop", "--dir", str(net.root), "--node", "2")
    run_cli("net", "stop", "--dir", str(net.root), "--node", "3")
    halted_at = net.head(0)
    accepted = [
        h
        for n in range(RESTART_TXS)
        if (h := _send(net, n % 2, _big(net, sender, 1_000 + n))) is not None
    ]
    assert len(accepted) == RESTART_TXS
    assert net.head(0) == halted_at and all(_receipt(net, 0, h) is None for h in accepted)
    result = run_cli("net", "stop", "--dir", str(net.root))
    assert result.code == 0, result
    result = run_cli("net", "start", "--dir", str(net.root), "--log-level", "WARNING")
    assert result.code == 0, result
    _wait_receipts(net, everyone, accepted)
    assert_agreement(net, everyone)


def _crafted_block(net: Net, key: PrivateKey, txs: list[Transaction]) -> bytes:
    """The next block after node 0's head with ``txs``, executed on its state and built the
    way a proposer builds it, whatever the rules say (read-only use of node 0's store)."""
    config = load_config(net.folder(0) / "node.toml")
    ledger = Ledger.open(config.data_dir, load_genesis(config.genesis), key)
    try:
        prepared = ledger._execute_new(ledger.head, txs, time.time_ns() // 1_000_000)
        return prepared.block.encode()
    finally:
        ledger.close()


async def _propose_as(net: Net, index: int, txs: list[Transaction], until: float) -> None:
    """Act as validator ``index`` on the p2p network: for each new height, send a proposal of
    a block with ``txs`` for its first rounds (the honest nodes take the one of the round
    where ``index`` is the proposer) until the wall-clock deadline ``until``."""
    config = load_config(net.folder(index) / "node.toml")
    key = net.key(index)
    chain_id = int(rpc_call(net.url(0), "eth_chainId", []), 16)
    network = Network(
        key=key,
        chain_id=chain_id,
        peers=config.peers,
        host=config.p2p_host,
        port=config.p2p_port,
        max_frame_bytes=config.max_frame_bytes,
        on_frame=lambda peer, kind, body: None,
        settings=transport_settings(config),
    )
    await network.start()
    try:
        while time.monotonic() < until:
            block = _crafted_block(net, key, txs)
            height = net.head(0) + 1
            for round_ in range(4):
                proposal = Proposal(
                    height=height,
                    round=round_,
                    block_hash=Hash32(_header_hash(block)),
                    block=block,
                    valid_round=-1,
                    proposer=key.public_key.address,
                )
                signed = proposal.with_signature(key.sign(proposal.sign_bytes(chain_id)))
                network.broadcast(FrameKind.CONSENSUS, encode_message(signed))
            await asyncio.sleep(0.3)
            if _rejections(net) >= 2:
                return
    finally:
        await network.stop()


def _header_hash(block: bytes) -> bytes:

    return Block.decode(block).hash


def _rejections(net: Net) -> int:
    """How many honest nodes logged refusing a proposal for its frozen sender."""
    refused = 0
    for index in range(3):
        log = (net.folder(index) / "node.log").read_text(errors="replace")
        refused += "not permitted" in log and "is frozen" in log
    return refused


def test_a_byzantine_proposal_with_a_frozen_senders_transaction_is_refused(net: Net) -> None:
    honest = [0, 1, 2]
    wait_until("all four committing", lambda: min(net.head(i) for i in range(4)) >= 2)
    admin, frozen = _account(net, "admin"), _account(net, "dept-b")
    freeze = _signed(
        net,
        admin,
        to=PERMISSIONS_ADDRESS,
        data=freeze_call(frozen.public_key.address),
        gas_limit=200_000,
    )
    freeze_hash = _send(net, 0, freeze)
    assert freeze_hash is not None
    _wait_receipts(net, [0], [freeze_hash])
    assert int(_receipt(net, 0, freeze_hash)["status"], 16) == 1  # type: ignore[index]
    # Validator 3 turns Byzantine: its process stops, its key proposes from this test.
    run_cli("net", "stop", "--dir", str(net.root), "--node", "3")
    forbidden = _signed(net, frozen, to=bytes(20), data=b"", gas_limit=50_000)
    asyncio.run(_propose_as(net, 3, [forbidden], time.monotonic() + 60))
    assert _rejections(net) >= 2
    start = min(net.head(i) for i in honest)
    wait_until("the chain going on", lambda: min(net.head(i) for i in honest) >= start + 3)
    tx_hash = "0x" + forbidden.hash.hex()
    assert all(_receipt(net, i, tx_hash) is None for i in honest)
    assert_agreement(net, honest)
