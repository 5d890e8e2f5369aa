"""Synthetic block commits for the store tests, and the child process of the crash test.

Run as a script, it opens the store in ``<dir>`` and commits blocks forever, continuing from
whatever head it finds::

    python tests/node/crash_writer.py <dir> <normal|large> <seed>

It prints ``ready <head height or -1>`` once the store is open; in ``normal`` mode
``first <height>`` once its first block is committed, and in ``large`` mode ``committing
<height>`` just before each commit, so that the parent can time its SIGKILL.

Blocks are shaped like real ones but nothing is really signed: keys, signatures and roots are
random bytes of the right widths. What the checks rely on:

* every block writes ``seed_key(height) -> seed`` and ``marker_key(state_root) -> height``
  with ``header.state_root = SM3(seed)``, so the state proves which block it belongs to;
* a normal block writes ``TX_COUNT`` transactions and ``RANDOM_STATE_KEYS + 2`` state keys; a
  large block writes ``LARGE_STATE_KEYS`` keys derived from its height (``large_key``) with
  ``SM3(key)`` as value, plus the same two keys.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

from chain.crypto.sm3 import sm3
from chain.primitives import ZERO_HASH, Address, Hash32, PublicKeyBytes
from chain.storage import BlockCommit
from chain.types import (
    Block,
    CommitCertificate,
    CommitSignature,
    Header,
    Log,
    Receipt,
    Transaction,
)
from node.storage import LmdbBlockStore

TX_COUNT = 3
"""Transactions per synthetic block."""
RANDOM_STATE_KEYS = 50
"""Random state keys per normal block (the seed and the marker come on top)."""
LARGE_STATE_KEYS = 20_000
"""Height-derived state keys per large block (the seed and the marker come on top)."""
CHAIN_ID = 7
VALIDATORS = tuple(sorted(Address(sm3(b"validator %d" % i)[-20:]) for i in range(4)))
"""Four fixed validator addresses, ascending, that "sign" every certificate."""
MAP_SIZE = 1 << 30
"""Map size the writer and the tests open the store with."""


def height_bytes(height: int) -> bytes:
    """The 8-byte big-endian height used in state keys and marker values."""
    return height.to_bytes(8, "big")


def seed_key(height: int) -> bytes:
    """State key holding the seed whose SM3 is the state root of block ``height``."""
    return b"block:" + height_bytes(height)


def marker_key(state_root: Hash32) -> bytes:
    """State key whose value is the height of the block with this state root."""
    return b"root:" + state_root


def large_key(height: int, index: int) -> bytes:
    """The ``index``-th height-derived state key of a large block."""
    return b"big:" + height_bytes(height) + index.to_bytes(4, "big")


def synthetic_transaction(rng: random.Random, height: int) -> Transaction:
    """A transaction with random nonce, key and signature of the right shapes."""
    return Transaction(
        chain_id=CHAIN_ID,
        nonce=Hash32(rng.randbytes(32)),
        block_limit=height + 100,
        to=Address(rng.randbytes(20)),
        value=0,
        data=rng.randbytes(rng.randrange(0, 96)),
        gas_limit=100_000,
        public_key=PublicKeyBytes(b"\x04" + rng.randbytes(64)),
        signature=rng.randbytes(70),
    )


def synthetic_receipt(rng: random.Random, tx: Transaction) -> Receipt:
    """A successful receipt for ``tx`` with one log."""
    log = Log(address=Address(rng.randbytes(20)), topics=(Hash32(rng.randbytes(32)),), data=b"")
    return Receipt(
        tx_hash=tx.hash,
        status=1,
        gas_used=21_000,
        contract_address=None,
        logs=(log,),
        output=b"",
    )


def synthetic_certificate(rng: random.Random, header: Header) -> CommitCertificate:
    """A certificate for ``header`` "signed" by :data:`VALIDATORS` with random bytes."""
    return CommitCertificate(
        height=header.height,
        round=0,
        block_hash=header.hash,
        signatures=tuple(
            CommitSignature(validator=v, signature=rng.randbytes(70)) for v in VALIDATORS
        ),
    )


def synthetic_commit(
    rng: random.Random,
    parent: Header | None,
    parent_certificate: CommitCertificate | None,
    *,
    large: bool = False,
    tx_count: int = TX_COUNT,
) -> BlockCommit:
    """A commit of the block that follows ``parent`` (genesis when ``parent`` is None)."""
    height = 0 if parent is None else parent.height + 1
    transactions = tuple(synthetic_transaction(rng, height) for _ in range(tx_count))
    receipts = tuple(synthetic_receipt(rng, tx) for tx in transactions)
    state_writes: dict[bytes, bytes] = {}
    if large:
        for index in range(LARGE_STATE_KEYS):
            key = large_key(height, index)
            state_writes[key] = sm3(key)
    else:
        for _ in range(RANDOM_STATE_KEYS):
            state_writes[rng.randbytes(32)] = rng.randbytes(rng.randrange(1, 200))
    seed = rng.randbytes(32)
    state_root = sm3(seed)
    state_writes[seed_key(height)] = seed
    state_writes[marker_key(state_root)] = height_bytes(height)
    last_commit = parent_certificate if height >= 2 else None
    header = Header(
        parent_hash=ZERO_HASH if parent is None else parent.hash,
        height=height,
        timestamp_ms=1_700_000_000_000 + 1000 * height,
        proposer=VALIDATORS[height % len(VALIDATORS)],
        tx_root=sm3(b"".join(tx.hash for tx in transactions)),
        receipt_root=sm3(b"".join(r.encode() for r in receipts)),
        state_root=state_root,
        validator_set_hash=sm3(b"".join(VALIDATORS)),
        last_commit_hash=ZERO_HASH if last_commit is None else last_commit.hash,
    )
    block = Block(header=header, transactions=transactions, last_commit=last_commit)
    return BlockCommit(
        block=block,
        receipts=receipts,
        state_writes=state_writes,
        certificate=synthetic_certificate(rng, header),
    )


def run_forever(path: Path, *, large: bool, seed: int) -> None:
    """Commit blocks to the store at ``path`` until killed, continuing from its head."""
    rng = random.Random(seed)
    with LmdbBlockStore.open(path, map_size=MAP_SIZE) as store:
        head = store.head()
        print(f"ready {-1 if head is None else head.height}", flush=True)
        certificate = None if head is None else store.commit_certificate(head.height)
        announced = large
        while True:
            commit = synthetic_commit(rng, head, certificate, large=large)
            if large:
                print(f"committing {commit.block.header.height}", flush=True)
            store.commit_block(commit)
            if not announced:
                print(f"first {commit.block.header.height}", flush=True)
                announced = True
            head, certificate = commit.block.header, commit.certificate


def main(argv: list[str]) -> int:
    """Entry point: ``crash_writer.py <dir> <normal|large> <seed>``."""
    path, mode, seed = argv
    if mode not in ("normal", "large"):
        raise SystemExit(f"unknown mode {mode!r}")
    run_forever(Path(path), large=mode == "large", seed=int(seed))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
