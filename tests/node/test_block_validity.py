"""Block validity is one set of rules for every path a block takes: a block whose
transactions the parent's state does not permit (frozen sender, sender without the deployer
role creating a contract) or whose encoding is larger than genesis ``max_block_bytes`` is
refused when proposed by another validator (ProcessProposal) and when received by sync
(commit with a valid certificate), and this node's own proposal never contains one. A block
that sync committed while its proposal waited gets the same answer as before."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from node_harness import DevChain, make_chain, signed_tx

from chain.crypto import PrivateKey
from chain.limits import MAX_TX_DATA_BYTES, MIN_BLOCK_BYTES
from chain.primitives import Address
from chain.types import Transaction
from contracts.permissions import PERMISSIONS_ADDRESS, freeze_call, permissions_contract
from node.ledger import BlockRejected, CommittedBlock, Ledger, StaleBlock

TIME_MS = 1_800_000_000_000


class TwoNodes:
    """The same chain opened twice: ``byzantine`` holds the validator key and builds blocks
    past the rules (through the ledger's internal block builder, as a faulty proposer
    would); ``honest`` judges them."""

    def __init__(self, root: Path, chain: DevChain, **genesis_changes: object) -> None:
        self.chain = chain
        self.genesis = replace(
            chain.genesis,
            system_contracts=(permissions_contract(chain.genesis.accounts),),
            **genesis_changes,  # type: ignore[arg-type]
        )
        self.byzantine = Ledger.open(root / "byzantine", self.genesis, chain.validator)
        self.honest = Ledger.open(root / "honest", self.genesis, None)
        self.clock = TIME_MS

    def now(self) -> int:
        self.clock += 1_000
        return self.clock

    def commit_on_both(self, txs: list[Transaction]) -> CommittedBlock:
        committed = self.byzantine.produce_block(txs, self.now())
        assert committed.certificate is not None
        self.honest.commit_certified(committed.block, committed.certificate)
        return committed

    def crafted(self, txs: list[Transaction]) -> CommittedBlock:
        """A block with ``txs`` executed and certified by the validator, whatever the rules
        say (what a Byzantine validator can sign)."""
        ledger = self.byzantine
        prepared = ledger._execute_new(ledger.head, txs, self.now())
        certificate = ledger._sign_certificate(prepared.block.header)
        return CommittedBlock(prepared.block, prepared.receipts, certificate)

    def close(self) -> None:
        self.byzantine.close()
        self.honest.close()


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[TwoNodes]:
    pair = TwoNodes(tmp_path, make_chain())
    yield pair
    pair.close()


def _transfer(key: PrivateKey) -> Transaction:
    return signed_tx(key, to=Address(bytes(20)), data=b"", gas_limit=50_000)


def _refused_everywhere(nodes: TwoNodes, block: CommittedBlock, reason: str) -> None:
    head = nodes.honest.head
    with pytest.raises(BlockRejected, match=reason):
        nodes.honest.process_encoded(block.block.encode())
    assert block.certificate is not None
    with pytest.raises(BlockRejected, match=reason):
        nodes.honest.commit_certified(block.block, block.certificate)
    assert nodes.honest.head == head


def test_a_frozen_senders_transaction_makes_the_block_invalid(nodes: TwoNodes) -> None:
    chain = nodes.chain
    # Block 1 freezes the sender: from block 2 on, the parent's state says it may not send.
    freeze = signed_tx(
        chain.deployer, to=PERMISSIONS_ADDRESS, data=freeze_call(chain.sender.public_key.address)
    )
    first = nodes.commit_on_both([freeze])
    assert first.receipts[0].status == 1

    frozen_tx = _transfer(chain.sender)
    block = nodes.crafted([_transfer(chain.deployer), frozen_tx])
    _refused_everywhere(nodes, block, "transaction 1 not permitted: .* is frozen")

    # This node's own proposal leaves the transaction out, with the reason.
    prepared = nodes.byzantine.prepare_block([frozen_tx], nodes.now())
    assert prepared.block.transactions == ()
    assert [tx for tx, _ in prepared.dropped] == [frozen_tx]
    assert "frozen" in prepared.dropped[0][1]

    # The same block without the frozen sender's transaction is accepted.
    good = nodes.crafted([_transfer(chain.deployer)])
    assert nodes.honest.process_encoded(good.block.encode()).block == good.block


def test_a_contract_creation_without_the_deployer_role_makes_the_block_invalid(
    nodes: TwoNodes,
) -> None:
    chain = nodes.chain
    creation = signed_tx(chain.sender, to=None, data=b"\x00", gas_limit=100_000)
    block = nodes.crafted([creation])
    _refused_everywhere(nodes, block, "not permitted: .* lacks role 'deployer'")
    outsider = nodes.crafted([_transfer(chain.outsider)])
    _refused_everywhere(nodes, outsider, "not permitted: .* lacks role 'sender'")


def test_a_block_over_max_block_bytes_is_invalid_and_never_proposed(tmp_path: Path) -> None:
    nodes = TwoNodes(tmp_path, make_chain(), max_block_bytes=MIN_BLOCK_BYTES)
    try:
        big = [
            signed_tx(
                nodes.chain.deployer,
                to=Address(bytes(20)),
                data=bytes([index]) * MAX_TX_DATA_BYTES,
                gas_limit=3_000_000,
            )
            for index in range(2)
        ]
        block = nodes.crafted(big)
        assert len(block.block.encode()) > MIN_BLOCK_BYTES
        _refused_everywhere(nodes, block, "more than the limit")

        # The proposer fills the block within its bytes: the second waits for the next.
        prepared = nodes.byzantine.prepare_block(big, nodes.now())
        assert prepared.block.transactions == (big[0],)
        assert prepared.deferred == (big[1],)
        assert prepared.dropped == ()
        assert len(prepared.block.encode()) <= MIN_BLOCK_BYTES
    finally:
        nodes.close()


def test_a_block_committed_by_sync_gets_the_same_answer_from_consensus(nodes: TwoNodes) -> None:
    block = nodes.crafted([_transfer(nodes.chain.deployer)])
    assert block.certificate is not None
    # Sync commits it first; the proposal of the same block is judged afterwards.
    committed = nodes.honest.commit_certified(block.block, block.certificate)
    judged = nodes.honest.process_encoded(block.block.encode())
    assert judged.block == block.block and judged.receipts == committed.receipts
    # Committing it again (consensus deciding it too) changes nothing.
    again = nodes.honest.commit_certified(block.block, block.certificate)
    assert again.block == block.block and nodes.honest.head == block.block.header
    # Another block at the committed height is stale, not "height H does not follow H".
    other = replace(block.block, header=replace(block.block.header, timestamp_ms=1))
    with pytest.raises(StaleBlock, match="committed already"):
        nodes.honest.process_block(other)
