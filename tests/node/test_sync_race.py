"""Block sync and consensus delivering the same height at the same time: the block that
sync commits while the same block's proposal waits to be judged gets the same answer from
the proposal (accepted), never "height H does not follow head H". Driven deterministically
through the consensus driver's own methods, with the ledger's single writer thread held so
that the sync commit is queued ahead of the proposal's check."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest
from node_harness import make_chain, make_config

from chain.commit import sign_precommit
from chain.consensus import Event, ProcessProposal, ProposalProcessed
from chain.crypto import PrivateKey
from chain.genesis import Genesis, GenesisValidator
from chain.types import Block, CommitCertificate
from node.consensus_driver import ConsensusDriver
from node.ledger import Ledger
from node.mempool import Mempool, Permissions

VALIDATORS = 4


@pytest.fixture
def executors() -> Iterator[tuple[ThreadPoolExecutor, ThreadPoolExecutor]]:
    writer, readers = ThreadPoolExecutor(1), ThreadPoolExecutor(2)
    yield writer, readers
    writer.shutdown(wait=True)
    readers.shutdown(wait=True)


def _genesis(keys: list[PrivateKey]) -> Genesis:
    validators = tuple(
        GenesisValidator(name=f"v{i}", public_key=k.public_key.to_bytes(), power=1)
        for i, k in enumerate(keys)
    )
    return replace(make_chain().genesis, validators=validators)


def _certified_block(
    root: Path, genesis: Genesis, keys: list[PrivateKey]
) -> tuple[Block, CommitCertificate]:
    """Block 1 as validator 1 proposes it, with precommits of three validators."""
    proposer = Ledger.open(root / "proposer", genesis, keys[1])
    try:
        block = proposer.prepare_block([], 1_800_000_000_000).block
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


def test_a_block_synced_while_its_proposal_waits_is_accepted_by_the_proposal(
    tmp_path: Path, executors: tuple[ThreadPoolExecutor, ThreadPoolExecutor]
) -> None:
    keys = sorted(
        (PrivateKey.generate() for _ in range(VALIDATORS)), key=lambda k: k.public_key.address
    )
    genesis = _genesis(keys)
    block, certificate = _certified_block(tmp_path, genesis, keys)
    ledger = Ledger.open(tmp_path / "node", genesis, keys[0])
    writer, readers = executors
    mempool = Mempool(
        ledger.rules,
        Permissions.at_head(ledger),
        capacity=100,
        nonce_committed=ledger.nonce_committed,
        next_height=lambda: ledger.head.height + 1,
    )
    driver = ConsensusDriver(
        ledger, mempool, keys[0], make_config(tmp_path / "node"), writer, readers
    )
    fed: list[Event] = []
    driver.feed = fed.append  # type: ignore[method-assign]

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
        assert ledger.head.height == 1
        assert fed == [ProposalProcessed(1, block.hash, True)]
        assert driver.counters["rejected_proposals"] == 0
        # Consensus deciding the same block afterwards is a no-op, not an error.
        assert not asyncio.run(driver._apply(block, certificate))
        assert ledger.commit_certified(block, certificate).block == block
    finally:
        ledger.close()
