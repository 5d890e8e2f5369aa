"""The LMDB block store: round trips, refused commits that write nothing, reopening, and
corruption reported as StorageError."""

from __future__ import annotations

import dataclasses
import importlib.util
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import lmdb
import pytest

from chain import encoding as enc
from chain.errors import EncodingError, StorageError
from chain.primitives import ZERO_HASH, Address, Hash32
from chain.storage import BlockCommit, BlockStore, TxLocation
from chain.types import Log
from node.log_index import LogEntry, LogQuery, block_log_entries
from node.storage import LmdbBlockStore, keys, lmdb_store


def _load_writer() -> ModuleType:
    path = Path(__file__).with_name("crash_writer.py")
    spec = importlib.util.spec_from_file_location("crash_writer", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cw = _load_writer()
MAP_SIZE = 64 << 20


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def store(store_path: Path) -> Iterator[LmdbBlockStore]:
    with LmdbBlockStore.open(store_path, map_size=MAP_SIZE) as opened:
        yield opened


def build_chain(rng: random.Random, length: int) -> list[BlockCommit]:
    commits: list[BlockCommit] = []
    for _ in range(length):
        parent = commits[-1] if commits else None
        commits.append(
            cw.synthetic_commit(
                rng,
                None if parent is None else parent.block.header,
                None if parent is None else parent.certificate,
            )
        )
    return commits


def commit_all(store: LmdbBlockStore, commits: list[BlockCommit]) -> None:
    for commit in commits:
        store.commit_block(commit)


def assert_holds(store: LmdbBlockStore, commits: list[BlockCommit]) -> None:
    """Every getter returns what was committed."""
    head = store.head()
    assert head == commits[-1].block.header
    state = store.state()
    for commit in commits:
        block = commit.block
        height = block.header.height
        assert store.block_by_height(height) == block
        assert store.block_by_hash(block.hash) == block
        assert store.receipts(height) == commit.receipts
        assert store.commit_certificate(height) == commit.certificate
        for index, tx in enumerate(block.transactions):
            assert store.tx_location(tx.hash) == TxLocation(height=height, index=index)
            assert store.nonce_height(tx.nonce) == height
        for key, value in commit.state_writes.items():
            assert state.get(key) == value


def snapshot(path: Path) -> dict[bytes, list[tuple[bytes, bytes]]]:
    """Every entry of every sub-database, read with lmdb directly (store must be closed)."""
    env = lmdb.open(str(path), readonly=True, max_dbs=len(keys.SUB_DATABASES))
    try:
        with env.begin() as txn:
            return {
                name: list(txn.cursor(env.open_db(name, txn=txn, create=False)))
                for name in keys.SUB_DATABASES
            }
    finally:
        env.close()


def rewrite(path: Path, name: bytes, key: bytes, change: Callable[[bytes], bytes]) -> None:
    """Replace the value under ``key`` in sub-database ``name`` by ``change(value)``."""
    env = lmdb.open(str(path), max_dbs=len(keys.SUB_DATABASES))
    try:
        db = env.open_db(name)
        with env.begin(write=True, db=db) as txn:
            value = txn.get(key)
            assert value is not None
            txn.put(key, change(value))
    finally:
        env.close()


def test_conforms_to_block_store_protocol(store: LmdbBlockStore) -> None:
    conforming: BlockStore = store
    assert conforming.head() is None


def test_empty_store_answers_none(store: LmdbBlockStore) -> None:
    assert store.head() is None
    assert store.block_by_height(0) is None
    assert store.block_by_hash(ZERO_HASH) is None
    assert store.receipts(0) is None
    assert store.tx_location(ZERO_HASH) is None
    assert store.nonce_height(ZERO_HASH) is None
    assert store.commit_certificate(0) is None
    assert store.state().get(b"anything") is None


def test_round_trip_of_every_getter(store: LmdbBlockStore) -> None:
    commits = build_chain(random.Random(1), 6)
    commit_all(store, commits)
    assert_holds(store, commits)


def test_unknown_ids_answer_none(store: LmdbBlockStore) -> None:
    commit_all(store, build_chain(random.Random(2), 3))
    unknown = Hash32(bytes(range(32)))
    assert store.block_by_height(3) is None
    assert store.block_by_height(-1) is None
    assert store.block_by_height(2**70) is None
    assert store.block_by_hash(unknown) is None
    assert store.block_by_hash(Hash32(b"short")) is None
    assert store.receipts(3) is None
    assert store.tx_location(unknown) is None
    assert store.nonce_height(unknown) is None
    assert store.commit_certificate(3) is None
    assert store.state().get(b"no such key") is None
    assert store.state().get(b"") is None
    assert store.state().get(b"k" * 600) is None
    assert store.tx_location(Hash32(b"h" * 600)) is None


def test_reopen_after_close_keeps_everything(store_path: Path) -> None:
    commits = build_chain(random.Random(3), 5)
    with LmdbBlockStore.open(store_path, map_size=MAP_SIZE) as store:
        commit_all(store, commits[:3])
    with LmdbBlockStore.open(store_path, map_size=MAP_SIZE) as store:
        assert_holds(store, commits[:3])
        commit_all(store, commits[3:])
    with LmdbBlockStore.open(store_path, map_size=MAP_SIZE) as store:
        assert_holds(store, commits)


def test_block_without_transactions(store: LmdbBlockStore) -> None:
    commit = cw.synthetic_commit(random.Random(4), None, None, tx_count=0)
    store.commit_block(commit)
    assert store.receipts(0) == ()
    assert store.block_by_height(0) == commit.block


def _wrong_height(commit: BlockCommit) -> BlockCommit:
    header = dataclasses.replace(commit.block.header, height=commit.block.header.height + 1)
    return dataclasses.replace(commit, block=dataclasses.replace(commit.block, header=header))


def _wrong_parent(commit: BlockCommit) -> BlockCommit:
    header = dataclasses.replace(commit.block.header, parent_hash=Hash32(b"\x01" * 32))
    return dataclasses.replace(
        commit, block=dataclasses.replace(commit.block, header=header), certificate=None
    )


def _missing_receipt(commit: BlockCommit) -> BlockCommit:
    return dataclasses.replace(commit, receipts=commit.receipts[:-1])


def _swapped_receipts(commit: BlockCommit) -> BlockCommit:
    return dataclasses.replace(commit, receipts=commit.receipts[::-1])


def _foreign_certificate(commit: BlockCommit) -> BlockCommit:
    assert commit.certificate is not None
    other = dataclasses.replace(commit.certificate, block_hash=Hash32(b"\x02" * 32))
    return dataclasses.replace(commit, certificate=other)


def _oversized_state_key(commit: BlockCommit) -> BlockCommit:
    return dataclasses.replace(commit, state_writes={**commit.state_writes, b"k" * 600: b"v"})


def _empty_state_key(commit: BlockCommit) -> BlockCommit:
    return dataclasses.replace(commit, state_writes={**commit.state_writes, b"": b"v"})


@pytest.mark.parametrize(
    "spoil",
    [
        _wrong_height,
        _wrong_parent,
        _missing_receipt,
        _swapped_receipts,
        _foreign_certificate,
        _oversized_state_key,
        _empty_state_key,
    ],
)
def test_refused_commit_writes_nothing(
    store_path: Path, spoil: Callable[[BlockCommit], BlockCommit]
) -> None:
    commits = build_chain(random.Random(5), 3)
    with LmdbBlockStore.open(store_path, map_size=MAP_SIZE) as store:
        commit_all(store, commits[:2])
    before = snapshot(store_path)
    with LmdbBlockStore.open(store_path, map_size=MAP_SIZE) as store:
        with pytest.raises(StorageError):
            store.commit_block(spoil(commits[2]))
        assert_holds(store, commits[:2])
    assert snapshot(store_path) == before


@pytest.mark.parametrize("height", [1, 5])
def test_empty_store_refuses_anything_but_height_zero(store: LmdbBlockStore, height: int) -> None:
    commits = build_chain(random.Random(6), height + 1)
    with pytest.raises(StorageError, match="height 0"):
        store.commit_block(commits[height])
    assert store.head() is None


def test_same_block_twice_is_refused(store: LmdbBlockStore) -> None:
    commits = build_chain(random.Random(7), 2)
    commit_all(store, commits)
    with pytest.raises(StorageError):
        store.commit_block(commits[1])
    assert_holds(store, commits)


def test_certificate_arriving_after_the_block(store: LmdbBlockStore) -> None:
    commits = build_chain(random.Random(8), 3)
    late = commits[2]
    commit_all(store, [*commits[:2], dataclasses.replace(late, certificate=None)])
    assert store.commit_certificate(2) is None
    assert late.certificate is not None
    store.put_commit_certificate(2, late.certificate)
    assert store.commit_certificate(2) == late.certificate


def test_certificate_for_another_block_is_refused(store: LmdbBlockStore) -> None:
    commits = build_chain(random.Random(9), 3)
    commit_all(store, commits[:2])
    certificate = commits[1].certificate
    assert certificate is not None
    with pytest.raises(StorageError):
        store.put_commit_certificate(2, certificate)  # wrong height
    with pytest.raises(StorageError):
        store.put_commit_certificate(1, dataclasses.replace(certificate, block_hash=ZERO_HASH))
    third = commits[2].certificate
    assert third is not None
    with pytest.raises(StorageError):
        store.put_commit_certificate(2, third)  # block 2 not committed
    assert store.commit_certificate(1) == certificate
    assert store.commit_certificate(2) is None


def _flip_byte(offset: int) -> Callable[[bytes], bytes]:
    def change(value: bytes) -> bytes:
        position = offset % len(value)
        return value[:position] + bytes([value[position] ^ 0x01]) + value[position + 1 :]

    return change


@pytest.mark.parametrize("offset", [0, 1, 3, 5, 40, 120, -1])
def test_flipped_byte_in_a_block_raises(store_path: Path, offset: int) -> None:
    commits = build_chain(random.Random(10), 3)
    with LmdbBlockStore.open(store_path, map_size=MAP_SIZE) as store:
        commit_all(store, commits)
    rewrite(store_path, keys.BLOCKS, keys.height_key(1), _flip_byte(offset))
    with LmdbBlockStore.open(store_path, map_size=MAP_SIZE) as store:
        with pytest.raises(StorageError):
            store.block_by_height(1)
        with pytest.raises(StorageError):
            store.block_by_hash(commits[1].block.hash)
        assert store.block_by_height(0) == commits[0].block


@pytest.mark.parametrize(
    ("name", "key"),
    [
        (keys.RECEIPTS, keys.height_key(1)),
        (keys.CERTIFICATES, keys.height_key(1)),
        (keys.META, keys.META_HEAD),
    ],
)
def test_flipped_byte_in_other_records_raises(store_path: Path, name: bytes, key: bytes) -> None:
    with LmdbBlockStore.open(store_path, map_size=MAP_SIZE) as store:
        commit_all(store, build_chain(random.Random(11), 2))
    rewrite(store_path, name, key, _flip_byte(30))
    with LmdbBlockStore.open(store_path, map_size=MAP_SIZE) as store:
        read = {
            keys.RECEIPTS: lambda: store.receipts(1),
            keys.CERTIFICATES: lambda: store.commit_certificate(1),
            keys.META: store.head,
        }[name]
        with pytest.raises(StorageError):
            read()


def test_well_framed_garbage_raises_storage_error_from_encoding_error(store_path: Path) -> None:
    with LmdbBlockStore.open(store_path, map_size=MAP_SIZE) as store:
        commit_all(store, build_chain(random.Random(12), 2))
    garbage = keys.frame(enc.encode([b"not", b"a", b"block"]))
    rewrite(store_path, keys.BLOCKS, keys.height_key(1), lambda _: garbage)
    with LmdbBlockStore.open(store_path, map_size=MAP_SIZE) as store:
        with pytest.raises(StorageError) as caught:
            store.block_by_height(1)
        assert isinstance(caught.value.__cause__, EncodingError)


def test_block_stored_under_the_wrong_height_raises(store_path: Path) -> None:
    commits = build_chain(random.Random(13), 3)
    with LmdbBlockStore.open(store_path, map_size=MAP_SIZE) as store:
        commit_all(store, commits)
    moved = keys.frame(commits[2].block.encode())
    rewrite(store_path, keys.BLOCKS, keys.height_key(1), lambda _: moved)
    with (
        LmdbBlockStore.open(store_path, map_size=MAP_SIZE) as store,
        pytest.raises(StorageError, match="height"),
    ):
        store.block_by_height(1)


def test_truncated_index_value_raises(store_path: Path) -> None:
    commits = build_chain(random.Random(14), 2)
    with LmdbBlockStore.open(store_path, map_size=MAP_SIZE) as store:
        commit_all(store, commits)
    tx = commits[1].block.transactions[0]
    rewrite(store_path, keys.TX_INDEX, tx.hash, lambda value: value[:-1])
    with (
        LmdbBlockStore.open(store_path, map_size=MAP_SIZE) as store,
        pytest.raises(StorageError),
    ):
        store.tx_location(tx.hash)


@pytest.mark.parametrize("version", [b"\x63", b"\x01"])
def test_other_layout_version_is_refused(store_path: Path, version: bytes) -> None:
    LmdbBlockStore.open(store_path, map_size=MAP_SIZE).close()
    rewrite(store_path, keys.META, keys.META_SCHEMA, lambda _: version)
    with pytest.raises(StorageError, match=f"layout version {version.hex()}"):
        LmdbBlockStore.open(store_path, map_size=MAP_SIZE)


def test_full_map_raises_storage_error_and_keeps_the_head(tmp_path: Path) -> None:
    rng = random.Random(15)
    path = tmp_path / "small"
    with LmdbBlockStore.open(path, map_size=1 << 20) as store:
        genesis = cw.synthetic_commit(rng, None, None)
        store.commit_block(genesis)
        big = cw.synthetic_commit(rng, genesis.block.header, genesis.certificate, large=True)
        with pytest.raises(StorageError, match="full"):
            store.commit_block(big)
        assert store.head() == genesis.block.header
        assert store.state().get(cw.large_key(1, 0)) is None


def test_closed_store_raises_storage_error(store_path: Path) -> None:
    store = LmdbBlockStore.open(store_path, map_size=MAP_SIZE)
    store.close()
    with pytest.raises(StorageError):
        store.head()


# -- the log index -----------------------------------------------------------------------------

LOG_ADDRESSES = tuple(Address(bytes([0xA0 + i]) * 20) for i in range(3))
LOG_TOPICS = tuple(Hash32(bytes([0x10 + i]) * 32) for i in range(4))


def with_logs(rng: random.Random, commit: BlockCommit) -> BlockCommit:
    """``commit`` with receipts whose logs come from small pools of addresses and topics, so
    that queries select some logs and not others."""
    receipts = []
    for receipt in commit.receipts:
        logs = tuple(
            Log(
                address=rng.choice(LOG_ADDRESSES),
                topics=tuple(rng.choice(LOG_TOPICS) for _ in range(rng.randrange(0, 5))),
                data=rng.randbytes(rng.randrange(0, 40)),
            )
            for _ in range(rng.randrange(0, 4))
        )
        receipts.append(dataclasses.replace(receipt, logs=logs))
    return dataclasses.replace(commit, receipts=tuple(receipts))


def logged_chain(rng: random.Random, length: int) -> list[BlockCommit]:
    commits: list[BlockCommit] = []
    for _ in range(length):
        parent = commits[-1] if commits else None
        commit = cw.synthetic_commit(
            rng,
            None if parent is None else parent.block.header,
            None if parent is None else parent.certificate,
            tx_count=rng.randrange(0, 5),
        )
        commits.append(with_logs(rng, commit))
    return commits


def expected_logs(commits: list[BlockCommit], query: LogQuery) -> list[LogEntry]:
    """The logs ``query`` selects, found by reading every block."""
    entries: list[LogEntry] = []
    for commit in commits:
        if query.from_height <= commit.block.header.height <= query.to_height:
            entries.extend(block_log_entries(commit.block, commit.receipts, query))
    return entries


def random_query(rng: random.Random, length: int) -> LogQuery:
    low = rng.randrange(0, length)
    addresses = (
        None if rng.random() < 0.4 else tuple(rng.sample(LOG_ADDRESSES, rng.randrange(0, 3)))
    )
    topics = tuple(
        None if rng.random() < 0.4 else tuple(rng.sample(LOG_TOPICS, rng.randrange(1, 3)))
        for _ in range(rng.randrange(0, 4))
    )
    return LogQuery(low, rng.randrange(low, length + 2), addresses, topics)


@pytest.mark.parametrize("seed_scan_limit", [lmdb_store.SEED_SCAN_LIMIT, 0, 3])
def test_find_logs_returns_what_reading_every_block_returns(
    store: LmdbBlockStore, monkeypatch: pytest.MonkeyPatch, seed_scan_limit: int
) -> None:
    # A small limit makes the query stream its first condition instead of a small seed.
    monkeypatch.setattr(lmdb_store, "SEED_SCAN_LIMIT", seed_scan_limit)
    rng = random.Random(21)
    commits = logged_chain(rng, 12)
    commit_all(store, commits)
    everything = expected_logs(commits, LogQuery(0, 11))
    assert len(everything) > 20
    assert store.find_logs(LogQuery(0, 11), 10_000) == everything
    for _ in range(200):
        query = random_query(rng, len(commits))
        expected = expected_logs(commits, query)
        assert store.find_logs(query, 10_000) == expected, query
        assert store.find_logs(query, 2) == expected[:2], query
        assert store.count_logs(query, 10_000) == len(expected), query
        assert store.count_logs(query, 2) == min(len(expected), 2), query


def test_find_logs_bounds(store: LmdbBlockStore) -> None:
    commits = logged_chain(random.Random(22), 4)
    commit_all(store, commits)
    everything = expected_logs(commits, LogQuery(0, 3))
    assert store.find_logs(LogQuery(0, 3), 0) == []
    assert store.find_logs(LogQuery(3, 2), 10) == []
    assert store.find_logs(LogQuery(-5, 2**70), 10_000) == everything
    assert store.find_logs(LogQuery(4, 9), 10) == []
    assert store.find_logs(LogQuery(0, 3, addresses=()), 10) == []
    assert store.find_logs(LogQuery(0, 3, topics=((),)), 10) == []
    unknown = Hash32(b"\x99" * 32)
    assert store.find_logs(LogQuery(0, 3, topics=((unknown,),)), 10) == []


def test_log_index_is_committed_with_the_block_and_survives_reopening(store_path: Path) -> None:
    commits = logged_chain(random.Random(23), 5)
    with LmdbBlockStore.open(store_path, map_size=MAP_SIZE) as store:
        commit_all(store, commits[:3])
        query = LogQuery(0, 10, topics=((LOG_TOPICS[0],),))
        assert store.find_logs(query, 10_000) == expected_logs(commits[:3], query)
    with LmdbBlockStore.open(store_path, map_size=MAP_SIZE) as store:
        assert store.find_logs(query, 10_000) == expected_logs(commits[:3], query)
        commit_all(store, commits[3:])
        assert store.find_logs(query, 10_000) == expected_logs(commits, query)
    counts = {name: len(entries) for name, entries in snapshot(store_path).items()}
    logs = [log for commit in commits for receipt in commit.receipts for log in receipt.logs]
    assert counts[keys.LOGS] == counts[keys.LOG_ADDRESS] == len(logs)
    assert counts[keys.LOG_TOPIC] == sum(len(set(log.topics)) for log in logs)
    assert counts[keys.LOG_BLOCKS] == sum(
        1 for commit in commits if any(receipt.logs for receipt in commit.receipts)
    )


def test_one_block_of_many_logs_answers_a_narrow_query(store: LmdbBlockStore) -> None:
    rng = random.Random(24)
    genesis = cw.synthetic_commit(rng, None, None, tx_count=0)
    block = cw.synthetic_commit(rng, genesis.block.header, genesis.certificate, tx_count=50)
    rare = Hash32(b"\x77" * 32)
    receipts = tuple(
        dataclasses.replace(
            receipt,
            logs=tuple(
                Log(LOG_ADDRESSES[0], (LOG_TOPICS[0], rare if i == 7 else LOG_TOPICS[1]), b"")
                for i in range(200)
            ),
        )
        for receipt in block.receipts
    )
    block = dataclasses.replace(block, receipts=receipts)
    commit_all(store, [genesis, block])
    found = store.find_logs(LogQuery(0, 1, (LOG_ADDRESSES[0],), (None, (rare,))), 10_000)
    assert [(entry.tx_index, entry.log_index) for entry in found] == [
        (tx, tx * 200 + 7) for tx in range(50)
    ]
    assert all(entry.block_hash == block.block.hash for entry in found)
    assert found == expected_logs([genesis, block], LogQuery(0, 1, None, (None, (rare,))))


def test_corrupt_log_record_raises(store_path: Path) -> None:
    commits = logged_chain(random.Random(25), 6)
    with LmdbBlockStore.open(store_path, map_size=MAP_SIZE) as store:
        commit_all(store, commits)
    position = snapshot(store_path)[keys.LOGS][0][0]
    rewrite(store_path, keys.LOGS, position, lambda value: value[:-1] + bytes([value[-1] ^ 1]))
    with (
        LmdbBlockStore.open(store_path, map_size=MAP_SIZE) as store,
        pytest.raises(StorageError, match="checksum"),
    ):
        store.find_logs(LogQuery(0, 10), 10_000)


def test_key_layout_helpers() -> None:
    assert keys.height_key(1) < keys.height_key(256) < keys.height_key(2**40)
    assert keys.decode_height(keys.height_key(12345), "x") == 12345
    assert keys.decode_tx_location(keys.tx_location_value(7, 3), "x") == (7, 3)
    assert keys.decode_log_position(keys.log_position(7, 2**32 - 1), "x") == (7, 2**32 - 1)
    assert keys.log_position(7, 2**32 - 1) < keys.log_position(8, 0)
    log = Log(Address(b"\x01" * 20), (Hash32(b"\x02" * 32), Hash32(b"\x03" * 32)), b"data")
    payload = keys.log_payload(5, Hash32(b"\x04" * 32), log)
    assert keys.decode_log_payload(payload, "x") == (5, Hash32(b"\x04" * 32), log)
    with pytest.raises(StorageError):
        keys.decode_log_payload(payload[:40], "x")
    with pytest.raises(StorageError):
        keys.log_position(1, 2**32)
    assert keys.unframe(keys.frame(b"payload"), "x") == b"payload"
    with pytest.raises(StorageError):
        keys.height_key(-1)
    with pytest.raises(StorageError):
        keys.unframe(b"\x01\x00", "x")
    with pytest.raises(StorageError):
        keys.unframe(b"\x02" + keys.frame(b"p")[1:], "x")
