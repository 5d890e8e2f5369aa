"""The ledger's cache of recent blocks stays within its bound in transactions, counted as
blocks come and go: committed, read back, evicted, and dropped by a dev rewind."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from chain.crypto import PrivateKey
from chain.crypto.keystore import decrypt_keystore
from chain.primitives import Address, Hash32
from chain.types import Transaction
from chain.validation import sign_transaction
from node import chain_reads
from node.chain_dir import init_chain_dir
from node.ledger import Ledger

PASSWORD = b"block-cache"


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[tuple[Ledger, PrivateKey]]:
    result = init_chain_dir(
        tmp_path / "chain", password=PASSWORD, dev=True, timestamp_ms=1_700_000_000_000,
        iterations=1_000,
    )  # fmt: skip
    keys = result.directory
    validator = decrypt_keystore(keys.validator_keystore.read_bytes(), PASSWORD)
    sender = decrypt_keystore(keys.keystore("dept-b").read_bytes(), PASSWORD)
    ledger = Ledger.open(tmp_path / "data", result.genesis, validator)
    yield ledger, sender
    ledger.close()


def _txs(ledger: Ledger, key: PrivateKey, count: int) -> list[Transaction]:
    return [
        sign_transaction(
            Transaction(
                chain_id=ledger.chain_id,
                nonce=Hash32(os.urandom(32)),
                block_limit=ledger.head.height + 100,
                to=Address(b"\x42" * 20),
                value=0,
                data=b"",
                gas_limit=100_000,
                public_key=key.public_key.to_bytes(),
            ),
            key,
        )
        for _ in range(count)
    ]


def _cached(ledger: Ledger) -> dict[int, int]:
    """Height -> transactions of every block the cache holds."""
    return {height: len(block.transactions) for height, (block, _) in ledger._blocks.items()}


def test_the_cache_holds_at_most_its_bound_in_transactions(
    chain: tuple[Ledger, PrivateKey], monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger, sender = chain
    monkeypatch.setattr(chain_reads, "_CACHE_TXS", 7)
    for count in (3, 2, 4, 1, 3, 5):
        ledger.produce_block(_txs(ledger, sender, count), 0)
        cached = _cached(ledger)
        # The newest block always stays; older ones go, oldest first, past the bound.
        assert ledger.head.height in cached
        assert sum(cached.values()) <= 7 or len(cached) == 1
        assert list(cached) == sorted(cached)
    assert _cached(ledger) == {6: 5}

    # Reading older blocks puts them back, and the count follows what is held.
    for height in (4, 5, 4):
        found = ledger.block_and_receipts(height)
        assert found is not None
        cached = _cached(ledger)
        assert sum(cached.values()) <= 7 or len(cached) == 1
    assert _cached(ledger) == {5: 3, 4: 1}
    ledger.produce_block(_txs(ledger, sender, 2), 0)
    assert _cached(ledger) == {5: 3, 4: 1, 7: 2}

    # A rewind drops the cache; counting starts again from nothing.
    ledger.rewind_dev(2)
    assert _cached(ledger) == {}
    ledger.produce_block(_txs(ledger, sender, 6), 0)
    ledger.produce_block(_txs(ledger, sender, 1), 0)
    assert _cached(ledger) == {3: 6, 4: 1}
    ledger.produce_block(_txs(ledger, sender, 1), 0)
    assert _cached(ledger) == {4: 1, 5: 1}
