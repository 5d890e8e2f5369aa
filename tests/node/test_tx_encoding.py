"""A transaction is encoded once on its way through admission, the pool, the block and the
store (it is immutable, so its encoding is kept on it), and a block's encoding, built from
its transactions' kept encodings, is the same bytes as the RLP of its items."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
from node_harness import DevChain, anchor_call, make_chain, signed_tx

from chain import encoding as enc
from chain.primitives import Address
from chain.types import Block, Transaction
from node.ledger import Ledger
from node.mempool import Mempool

CLOCK_MS = 1_800_000_000_000
ANCHOR = Address(b"\x11" * 20)


@pytest.fixture(scope="module")
def chain() -> DevChain:
    return make_chain()


def _tx(chain: DevChain, data_size: int = 36) -> Transaction:
    data = anchor_call(os.urandom(32)) if data_size == 36 else os.urandom(data_size)
    return signed_tx(chain.deployer, to=ANCHOR, data=data, gas_limit=100_000)


def test_a_transaction_is_encoded_once_through_pool_block_and_store(
    chain: DevChain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = Ledger.open(tmp_path, chain.genesis, chain.validator)
    try:
        mempool = Mempool(
            ledger.rules,
            ledger.permissions_at(ledger.head),
            capacity=10,
            nonce_committed=ledger.nonce_committed,
            next_height=lambda: ledger.head.height + 1,
        )
        raw = _tx(chain).encode()
        encoded: list[Transaction] = []
        to_rlp = Transaction.to_rlp

        def counted(self: Transaction) -> enc.RLPItem:
            encoded.append(self)
            return to_rlp(self)

        monkeypatch.setattr(Transaction, "to_rlp", counted)
        tx = mempool.check(raw)
        mempool.add(tx)
        (taken,) = mempool.take(10)
        committed = ledger.execute_ahead([taken], CLOCK_MS)
        ledger.flush()
        committed.block.encode()
        assert committed.block.transactions == (tx,)
        assert ledger.lookup_transaction(tx.hash) is not None
        # Its hash, the pool's byte count, the block's size check and the stored block.
        assert len(encoded) == 1, f"encoded {len(encoded)} times"
        assert tx.encode() == raw
    finally:
        ledger.close()


@pytest.mark.parametrize("tx_count", [0, 1, 3, 40])
def test_a_block_encodes_to_the_rlp_of_its_items_and_back(
    chain: DevChain, tmp_path: Path, tx_count: int
) -> None:
    ledger = Ledger.open(tmp_path, chain.genesis, chain.validator)
    try:
        # The first block carries no certificate, the second its parent's; one transaction
        # with a payload long enough for a multi-byte length prefix.
        for height in (1, 2):
            txs = [_tx(chain, 300 if i == 0 else 36) for i in range(tx_count)]
            block = ledger.produce_block(txs, CLOCK_MS + height).block
            assert (block.last_commit is None) == (height == 1)
            assert block.encode() == enc.encode(block.to_rlp())
            assert Block.decode(block.encode()) == block
            stored = ledger.block(height)
            assert stored == block and stored is not None
            assert stored.encode() == block.encode()
    finally:
        ledger.close()


def test_a_changed_copy_of_a_transaction_is_encoded_afresh(chain: DevChain) -> None:
    tx = _tx(chain)
    first = tx.encode()
    changed = dataclasses.replace(tx, gas_limit=tx.gas_limit + 1)
    assert changed.encode() != first
    assert changed.encode() == enc.encode(changed.to_rlp())
    assert Transaction.decode(changed.encode()) == changed
    assert changed.hash != tx.hash
    assert tx.encode() == first == enc.encode(tx.to_rlp())
