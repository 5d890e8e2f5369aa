"""Block sync and consensus on one height. The block that sync commits while the same
block's proposal waits to be judged gets the same answer from the proposal (accepted),
never "height H does not follow head H"; driven deterministically through the consensus
driver's own methods, with the ledger's single writer thread held so that the sync commit
is queued ahead of the proposal's check. And sync refuses a validly certified block that
breaks the block rules, naming its height."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest
from node_harness import DevChain, make_chain, make_config, signed_tx

from chain import encoding as enc
from chain.commit import sign_precommit
from chain.consensus import Event, ProcessProposal, ProposalProcessed
from chain.crypto import PrivateKey
from chain.genesis import Genesis, GenesisValidator
from chain.types import Block, CommitCertificate, Transaction
from node.consensus_driver import ConsensusDriver
from node.ledger import Ledger
from node.mempool import Mempool, Permissions

VALIDATORS = 4

Executors = tuple[ThreadPoolExecutor, ThreadPoolExecutor]


@pytest.fixture
def executors() -> Iterator[Executors]:
    writer, readers = ThreadPoolExecutor(1), ThreadPoolExecutor(2)
    yield writer, readers
    writer.shutdown(wait=True)
    readers.shutdown(wait=True)


def _keys() -> list[PrivateKey]:
    keys = (PrivateKey.generate() for _ in range(VALIDATORS))
    return sorted(keys, key=lambda k: k.public_key.address)


def _genesis(keys: list[PrivateKey], chain: DevChain) -> Genesis:
    validators = tuple(
        GenesisValidator(name=f"v{i}", public_key=k.public_key.to_bytes(), power=1)
        for i, k in enumerate(keys)
    )
    return replace(chain.genesis, validators=validators)


def _certified_block(
    root: Path, genesis: Genesis, keys: list[PrivateKey], txs: tuple[Transaction, ...] = ()
) -> tuple[Block, CommitCertificate]:
    """Block 1 with ``txs`` as validator 1 builds it (past the rules, as a Byzantine
    proposer can), with precommits of three validators."""
    proposer = Ledger.open(root / "proposer", genesis, keys[1])
    try:
        block = proposer._execute_new(proposer.head, list(txs), 1_800_000_000_000).block
    finally:
        proposer.close()
    signatures = sorted(
        (
            sign_precommit(k, chain_id=genesis.chain_id, height=1, round_=0, block_hash=block.hash)
            for k in keys[:3]
        ),
        key=lambda s: s.validator,
    )
    return block, CommitCertificate(1, 0, block.hash, tuple(signatures))


def _driver(root: Path, genesis: Genesis, key: PrivateKey, executors: Executors) -> ConsensusDriver:
    ledger = Ledger.open(root, genesis, key)
    writer, readers = executors
    mempool = Mempool(
        ledger.rules,
        Permissions.at_head(ledger),
        capacity=100,
        nonce_committed=ledger.nonce_committed,
        next_height=lambda: ledger.head.height + 1,
    )
    return ConsensusDriver(ledger, mempool, key, make_config(root), writer, readers)


def test_a_block_synced_while_its_proposal_waits_is_accepted_by_the_proposal(
    tmp_path: Path, executors: Executors
) -> None:
    keys = _keys()
    genesis = _genesis(keys, make_chain())
    block, certificate = _certified_block(tmp_path, genesis, keys)
    driver = _driver(tmp_path / "node", genesis, keys[0], executors)
    writer, _ = executors
    fed: list[Event] = []
    driver.feed = fed.append  # type: ignore[method-assign,assignment]

    async def race() -> None:
        hold = threading.Event()
        held = asyncio.get_running_loop().run_in_executor(writer, hold.wait)
        # Sync's commit of block 1 reaches the writer thread first, then the proposal's check.
        synced = asyncio.ensure_future(driver._apply(block, certificate))
        await asyncio.sleep(0)
        proposal = ProcessProposal(height=1, round=0, block_hash=block.hash, block=block.encode())
        judged = asyncio.ensure_future(driver._process(proposal))
        await asyncio.sleep(0)
        hold.set()
        await held
        assert await synced
        await judged

    try:
        asyncio.run(race())
        assert driver.ledger.head.height == 1
        assert fed == [ProposalProcessed(1, block.hash, True)]
        assert driver.counters["rejected_proposals"] == 0
        # Consensus deciding the same block afterwards is a no-op, not an error.
        assert not asyncio.run(driver._apply(block, certificate))
        assert driver.ledger.commit_certified(block, certificate).block == block
    finally:
        driver.ledger.close()


def test_sync_refuses_a_block_that_breaks_the_rules_and_names_its_height(
    tmp_path: Path, executors: Executors, caplog: pytest.LogCaptureFixture
) -> None:
    keys, chain = _keys(), make_chain()
    genesis = _genesis(keys, chain)
    # A contract creation by an account without the deployer role, validly certified.
    creation = signed_tx(chain.sender, to=None, data=b"\x00", gas_limit=100_000)
    block, certificate = _certified_block(tmp_path, genesis, keys, (creation,))
    driver = _driver(tmp_path / "node", genesis, keys[0], executors)
    body = enc.encode([[block.encode(), certificate.encode()]])
    try:
        asyncio.run(driver.sync.on_response(keys[1].public_key.to_bytes(), body))
        assert driver.ledger.head.height == 0
        assert driver.counters["sync_rejected"] == 1
        assert "sync: rejecting block 1: transaction 0 not permitted" in caplog.text
    finally:
        driver.ledger.close()
