"""SIGKILL a process that commits blocks, reopen the store, and check it holds whole blocks only.

The writer (``crash_writer.py``) runs in a child process; the parent kills it at a random moment
(seeded: the seed is printed, rerun with ``LIANXIN_CRASH_SEED``), checks the store through the
public API and by counting the raw LMDB entries, then restarts the writer, which must continue
from the head. ``LIANXIN_CRASH_KILLS`` sets the number of kills (default 50).

Each writer is forked from one process that has imported the writer's modules once
(``tests/support/fork_server.py``): importing them cost most of the CPU of a round, and a forked
writer opens its store only after the fork, as a freshly started one does.

SIGKILL loses the process but not the page cache, so these tests prove atomicity (one write
transaction per block), not power-loss durability; that rests on ``sync=True`` and
``metasync=True`` (fsync before commit returns).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import random
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import fork_server as fs
import lmdb
import pytest

from chain.crypto.sm3 import sm3
from chain.storage import TxLocation
from chain.types import Header
from node.storage import LmdbBlockStore, keys

ROOT = Path(__file__).resolve().parents[2]
WRITER = Path(__file__).with_name("crash_writer.py")
RECENT_BLOCKS = 5
"""How many blocks below the head are re-checked after every kill."""


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cw = _load("crash_writer", WRITER)
ForkServer = fs.ForkServer


@pytest.fixture
def fork_server(tmp_path: Path) -> Iterator[ForkServer]:
    """The parent of the test's writers, with the writer's modules imported."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    server = fs.ForkServer(
        ["chain.storage", "chain.types", "node.storage"], env, tmp_path / "writers.log"
    )
    try:
        yield server
    finally:
        server.close()


class Writer:
    """A running ``crash_writer.py`` process, forked by the fork server; its lines come on
    the server's output."""

    def __init__(self, server: ForkServer, path: Path, mode: str, seed: int) -> None:
        self.server = server
        self.child = server.start("path", str(WRITER), [str(path), mode, str(seed)])
        self.start_height = int(server.expect("ready"))

    def wait_for_first_commit(self) -> int:
        """Block until a ``normal`` writer has committed its first block; return its height."""
        return int(self.server.expect("first"))

    def wait_for_commit_start(self) -> int:
        """Block until the writer announces a commit; return that block's height."""
        return int(self.server.expect("committing"))

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Never leave a writer running, also when a check failed."""
        if self.child.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.child.kill()
            self.server.close()

    def kill(self) -> None:
        """SIGKILL the writer and reap it."""
        self.child.kill()
        assert self.child.wait() == -signal.SIGKILL


def check_block(store: LmdbBlockStore, height: int) -> Header:
    """Check the block at ``height`` through the public API: indexes, receipts, certificate
    and the state marker all agree with it. Return its header."""
    block = store.block_by_height(height)
    assert block is not None, f"block {height} missing below the head"
    assert block.header.height == height
    assert store.block_by_hash(block.hash) == block
    receipts = store.receipts(height)
    assert receipts is not None
    assert len(receipts) == len(block.transactions)
    for index, (tx, receipt) in enumerate(zip(block.transactions, receipts, strict=True)):
        assert receipt.tx_hash == tx.hash
        assert store.tx_location(tx.hash) == TxLocation(height=height, index=index)
        assert store.nonce_height(tx.nonce) == height
    certificate = store.commit_certificate(height)
    assert certificate is not None
    assert certificate.block_hash == block.hash
    state = store.state()
    seed = state.get(cw.seed_key(height))
    assert seed is not None and sm3(seed) == block.header.state_root
    assert state.get(cw.marker_key(block.header.state_root)) == cw.height_bytes(height)
    return block.header


def check_chain(store: LmdbBlockStore, low: int, high: int) -> None:
    """Blocks ``low..high`` are whole and each links to its parent and its certificate."""
    previous = check_block(store, low)
    for height in range(low + 1, high + 1):
        header = check_block(store, height)
        assert header.parent_hash == previous.hash
        if height >= 2:
            block = store.block_by_height(height)
            assert block is not None and block.last_commit == store.commit_certificate(height - 1)
        previous = header


def check_store(path: Path, *, full: bool) -> Header:
    """Reopen the store after a kill and check it; return the head."""
    with LmdbBlockStore.open(path, map_size=cw.MAP_SIZE) as store:
        head = store.head()
        assert head is not None
        block = store.block_by_height(head.height)
        assert block is not None and block.header == head
        low = 0 if full else max(0, head.height - RECENT_BLOCKS)
        check_chain(store, low, head.height)
        above = head.height + 1
        assert store.block_by_height(above) is None
        assert store.receipts(above) is None
        assert store.commit_certificate(above) is None
        assert store.state().get(cw.seed_key(above)) is None
    return head


def raw_counts(path: Path) -> dict[bytes, tuple[int, int | None]]:
    """For every sub-database: (entries, last height key or None), read with lmdb directly."""
    env = lmdb.open(str(path), readonly=True, max_dbs=len(keys.SUB_DATABASES), lock=True)
    try:
        counts: dict[bytes, tuple[int, int | None]] = {}
        with env.begin() as txn:
            for name in keys.SUB_DATABASES:
                db = env.open_db(name, txn=txn, create=False)
                entries = txn.stat(db)["entries"]
                last: int | None = None
                if name in keys.HEIGHT_KEYED:
                    cursor = txn.cursor(db)
                    if cursor.last():
                        last = keys.decode_height(cursor.key(), name.decode())
                counts[name] = (entries, last)
    finally:
        env.close()
    return counts


def check_nothing_partial(path: Path, head: int, state_keys_per_block: int) -> None:
    """No sub-database holds anything of a block above ``head``: every per-block entry count
    matches ``head + 1`` whole blocks exactly."""
    blocks = head + 1
    counts = raw_counts(path)
    for name in keys.HEIGHT_KEYED:
        assert counts[name] == (blocks, head), name
    assert counts[keys.HASH_INDEX][0] == blocks
    assert counts[keys.TX_INDEX][0] == blocks * cw.TX_COUNT
    assert counts[keys.NONCE_INDEX][0] == blocks * cw.TX_COUNT
    assert counts[keys.STATE][0] == blocks * state_keys_per_block
    assert counts[keys.META][0] == 2


def _rng() -> tuple[int, random.Random]:
    seed = int(os.environ.get("LIANXIN_CRASH_SEED", random.SystemRandom().randrange(2**32)))
    print(f"crash test seed: {seed} (rerun with LIANXIN_CRASH_SEED={seed})")
    return seed, random.Random(seed)


@pytest.mark.slow
def test_sigkill_leaves_whole_blocks(tmp_path: Path, fork_server: ForkServer) -> None:
    kills = int(os.environ.get("LIANXIN_CRASH_KILLS", "50"))
    seed, rng = _rng()
    path = tmp_path / "store"
    previous: Header | None = None
    started = time.monotonic()
    for round_number in range(kills):
        with Writer(fork_server, path, "normal", seed + round_number) as writer:
            assert writer.start_height == (-1 if previous is None else previous.height)
            # Killed at a random moment after its first commit: on a loaded machine (fsync
            # behind other writers) a run killed before it could commit once would show no
            # progress without anything being wrong.
            writer.wait_for_first_commit()
            time.sleep(rng.uniform(0.0, 0.35))
            writer.kill()
        head = check_store(path, full=round_number == kills - 1)
        check_nothing_partial(path, head.height, cw.RANDOM_STATE_KEYS + 2)
        if previous is not None:
            assert head.height > previous.height, "the restarted writer made no progress"
            with LmdbBlockStore.open(path, map_size=cw.MAP_SIZE) as store:
                kept = store.block_by_height(previous.height)
                assert kept is not None and kept.header == previous
        previous = head
    assert previous is not None
    print(f"{kills} kills, head {previous.height}, {time.monotonic() - started:.1f} s")


@pytest.mark.slow
def test_sigkill_during_large_commit_is_all_or_nothing(
    tmp_path: Path, fork_server: ForkServer
) -> None:
    seed, rng = _rng()
    path = tmp_path / "store"
    kills = 8
    interrupted = 0
    for round_number in range(kills):
        with Writer(fork_server, path, "large", seed + round_number) as writer:
            # Let a few blocks go through, then kill right after a commit has begun. At least
            # two commit starts, so the first (genesis, on the first round) has finished.
            for _ in range(rng.randrange(2, 5)):
                committing = writer.wait_for_commit_start()
            time.sleep(rng.uniform(0.0, 0.02))
            writer.kill()
        head = check_store(path, full=round_number == kills - 1)
        assert head.height >= committing - 1
        interrupted += head.height == committing - 1
        check_nothing_partial(path, head.height, cw.LARGE_STATE_KEYS + 2)
        with LmdbBlockStore.open(path, map_size=cw.MAP_SIZE) as store:
            state = store.state()
            for index in (0, cw.LARGE_STATE_KEYS // 2, cw.LARGE_STATE_KEYS - 1):
                key = cw.large_key(head.height, index)
                assert state.get(key) == sm3(key)
                assert state.get(cw.large_key(head.height + 1, index)) is None
    print(f"{kills} kills during large commits, {interrupted} before the commit finished")
