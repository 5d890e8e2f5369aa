"""The LMDB block store: the one module of the project that imports ``lmdb``.

:class:`LmdbBlockStore` implements :class:`chain.storage.BlockStore`. A committed block is
written, with its receipts, its state writes, its certificate and every index, in ONE LMDB
write transaction; the head moves in that same transaction. After a crash the store therefore
holds a block entirely or not at all. :meth:`LmdbBlockStore.commit_blocks` writes several
consecutive blocks in one such transaction (group commit: one flush to disk for all of them,
all or none stored). The key layout is described in :mod:`node.storage.keys`.

Durability: the environment is opened with ``sync=True`` and ``metasync=True`` (LMDB's default
full durability: data pages and the meta page are flushed with fsync before a commit returns),
``writemap=False`` and ``map_async=False``. A transaction that ``commit_block`` returned from
survives SIGKILL of the process and loss of power. ``lock=True`` lets several processes (a node
and an offline inspection tool) share the files safely; LMDB admits one writer at a time, and
the head check runs inside the write transaction, so two writers cannot both append at one
height.

State: the state key space is written exactly as execution hands it over (trie nodes and code,
keyed by their hash). Nothing is ever deleted in this version: an unreferenced trie node stays
on disk. Keys must be 1 to 511 bytes (LMDB's key size limit).

Logs: the same write transaction indexes every log of the block by emitting address and by
topic and stores a record of it (see :mod:`node.storage.keys`), so that :meth:`find_logs`
answers eth_getLogs from the index alone; there is no separate index to catch up after a crash.

Rewind (the single-validator dev chain's ``evm_revert`` only, see :mod:`node.dev_rewind`):
:meth:`LmdbBlockStore.rewind_to` deletes every record of the blocks above a height and moves
the head back in ONE write transaction (:mod:`node.storage.rewind`), so a crash leaves the old
head or the new one, whole. Block records are encoded in :mod:`node.storage.block_records`.

Every value read back is decoded with the strict decoders of :mod:`chain.types` after its
checksum is verified; corrupt bytes raise :class:`chain.errors.StorageError` (chained to the
:class:`chain.errors.EncodingError` when decoding failed) instead of returning a wrong value.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Self, TypeVar

import lmdb

from chain import encoding as enc
from chain.errors import EncodingError, StorageError
from chain.primitives import HASH_SIZE, Hash32
from chain.storage import BlockCommit, BlockStore, KeyValueReader, TxLocation
from chain.types import Block, CommitCertificate, Header, Receipt
from node.log_index import IndexGroup, LogEntry, LogIndexKind, LogQuery, index_groups, log_matches
from node.storage import keys
from node.storage.block_records import (
    MAX_STATE_KEY_SIZE as MAX_STATE_KEY_SIZE,
)
from node.storage.block_records import (
    BlockRecords,
    block_records,
    check_extends,
    valid_height,
    valid_key,
)
from node.storage.rewind import RewindDatabases, rewind_blocks

DEFAULT_MAP_SIZE = 16 << 30
"""Upper bound of the database size: 16 GiB of address space. The file grows only as data is
written; a store that outgrows the map raises StorageError and must be reopened larger."""

STATE_CACHE_ENTRIES = 16_384
"""State values (trie nodes and code) kept in memory after a read. State keys are hashes of
their values and nothing is ever deleted, so a value read once stays right for the life of
the store; only absent keys are never cached (a later block may add them). The cache is
emptied when full, and refills with the nodes near the roots that every read walks."""

SEED_SCAN_LIMIT = 4096
"""A log query scans each of its index conditions for at most this many entries. The
smallest condition below the limit supplies the candidates (the first condition when none
is), and the others are checked by point lookups on those candidates instead of scans."""

_T = TypeVar("_T")


@dataclass(frozen=True)
class _SubDatabases:
    """Handles of the named sub-databases of one environment."""

    blocks: lmdb._Database
    hash_index: lmdb._Database
    receipts: lmdb._Database
    tx_index: lmdb._Database
    nonce_index: lmdb._Database
    certificates: lmdb._Database
    state: lmdb._Database
    log_blocks: lmdb._Database
    logs: lmdb._Database
    log_address: lmdb._Database
    log_topic: lmdb._Database
    meta: lmdb._Database


@contextmanager
def _lmdb_errors(action: str) -> Iterator[None]:
    """Turn any LMDB failure during ``action`` into a StorageError."""
    try:
        yield
    except lmdb.MapFullError as exc:
        raise StorageError(
            f"{action}: the store is full; reopen it with a larger map_size"
        ) from exc
    except lmdb.Error as exc:
        raise StorageError(f"{action}: {exc}") from exc


def _decode(where: str, decoder: Callable[[bytes], _T], payload: bytes) -> _T:
    """Decode ``payload`` strictly, reporting corruption as StorageError."""
    try:
        return decoder(payload)
    except EncodingError as exc:
        raise StorageError(f"{where}: {exc}") from exc


def _decode_receipts(payload: bytes) -> tuple[Receipt, ...]:
    items = enc.as_list(enc.decode(payload), "receipts")
    return tuple(Receipt.from_rlp(item) for item in items)


class _StateReader:
    """Reads the committed state; each ``get`` sees the latest committed head."""

    def __init__(self, store: LmdbBlockStore) -> None:
        self._store = store

    def get(self, key: bytes) -> bytes | None:
        """Return the value stored under ``key``, or ``None``."""
        return self._store._state_get_cached(key)


class LmdbBlockStore:
    """A :class:`chain.storage.BlockStore` on an LMDB environment. Build it with
    :meth:`open`; use it as a context manager or call :meth:`close`."""

    def __init__(self, env: lmdb.Environment, dbs: _SubDatabases) -> None:
        """Wrap an already opened environment; prefer :meth:`open`."""
        self._env = env
        self._dbs = dbs
        self._state_cache: dict[bytes, bytes] = {}
        self._head_certificate: CommitCertificate | None = None
        """The certificate this store last committed with a block (the head's), kept
        decoded: a dev chain's producer asks for its tip's certificate twice per block (the
        byte budget and the next block's ``last_commit``), and reading it back from LMDB,
        checksum and decoding included, was a tenth of an empty block's CPU."""

    @classmethod
    def open(cls, path: Path, *, map_size: int = DEFAULT_MAP_SIZE) -> LmdbBlockStore:
        """Open (creating if needed) the store in directory ``path``.

        Raises StorageError if the files cannot be opened or were written by another layout
        version."""
        with _lmdb_errors(f"open {path}"):
            path.mkdir(parents=True, exist_ok=True)
            env = lmdb.open(
                str(path),
                map_size=map_size,
                subdir=True,
                max_dbs=len(keys.SUB_DATABASES),
                sync=True,
                metasync=True,
                map_async=False,
                writemap=False,
                lock=True,
            )
        try:
            with _lmdb_errors(f"open {path}"):
                # Reader slots left by a killed process would pin old pages forever.
                env.reader_check()
                dbs = _SubDatabases(
                    **{name.decode(): env.open_db(name) for name in keys.SUB_DATABASES}
                )
                with env.begin(write=True) as txn:
                    schema = txn.get(keys.META_SCHEMA, db=dbs.meta)
                    if schema is None:
                        txn.put(keys.META_SCHEMA, keys.SCHEMA_VERSION, db=dbs.meta)
            if schema is not None and schema != keys.SCHEMA_VERSION:
                raise StorageError(
                    f"open {path}: store layout version {schema.hex()}, this node reads only "
                    f"layout version {keys.SCHEMA_VERSION.hex()}; initialise a new data directory"
                )
        except BaseException:
            env.close()
            raise
        return cls(env, dbs)

    def close(self) -> None:
        """Close the environment. Committed data is already durable; closing flushes nothing."""
        self._env.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- reads -------------------------------------------------------------------------------

    def head(self) -> Header | None:
        """The header of the highest committed block, or ``None`` for an empty store."""
        with _lmdb_errors("read head"), self._env.begin() as txn:
            return self._read_head(txn)

    def block_by_height(self, height: int) -> Block | None:
        """The committed block at ``height``, or ``None``."""
        if not valid_height(height):
            return None
        with _lmdb_errors(f"read block {height}"), self._env.begin() as txn:
            return self._read_block(txn, height)

    def block_by_hash(self, block_hash: Hash32) -> Block | None:
        """The committed block with this hash, or ``None``."""
        if len(block_hash) != HASH_SIZE:
            return None
        with _lmdb_errors(f"read block {block_hash.hex()}"), self._env.begin() as txn:
            raw_height = txn.get(block_hash, db=self._dbs.hash_index)
            if raw_height is None:
                return None
            height = keys.decode_height(raw_height, f"hash_index[{block_hash.hex()}]")
            block = self._read_block(txn, height)
        if block is None or block.hash != block_hash:
            raise StorageError(f"hash_index[{block_hash.hex()}] points at another block")
        return block

    def receipts(self, height: int) -> tuple[Receipt, ...] | None:
        """Receipts of the block at ``height`` in block order, or ``None``."""
        if not valid_height(height):
            return None
        where = f"receipts[{height}]"
        with _lmdb_errors(f"read {where}"), self._env.begin() as txn:
            record = txn.get(keys.height_key(height), db=self._dbs.receipts)
        if record is None:
            return None
        return _decode(where, _decode_receipts, keys.unframe(record, where))

    def tx_location(self, tx_hash: Hash32) -> TxLocation | None:
        """Where the transaction with this hash was committed, or ``None``."""
        where = f"tx_index[{tx_hash.hex()}]"
        with _lmdb_errors(f"read {where}"), self._env.begin() as txn:
            raw = txn.get(tx_hash, db=self._dbs.tx_index) if valid_key(tx_hash) else None
        if raw is None:
            return None
        height, index = keys.decode_tx_location(raw, where)
        return TxLocation(height=height, index=index)

    def nonce_height(self, nonce: Hash32) -> int | None:
        """The height at which a transaction with this replay nonce was committed."""
        where = f"nonce_index[{nonce.hex()}]"
        with _lmdb_errors(f"read {where}"), self._env.begin() as txn:
            raw = txn.get(nonce, db=self._dbs.nonce_index) if valid_key(nonce) else None
        return None if raw is None else keys.decode_height(raw, where)

    def commit_certificate(self, height: int) -> CommitCertificate | None:
        """The commit certificate for the block at ``height``, if stored."""
        kept = self._head_certificate
        if kept is not None and kept.height == height:
            return kept
        if not valid_height(height):
            return None
        where = f"certificates[{height}]"
        with _lmdb_errors(f"read {where}"), self._env.begin() as txn:
            record = txn.get(keys.height_key(height), db=self._dbs.certificates)
        if record is None:
            return None
        certificate = _decode(where, CommitCertificate.decode, keys.unframe(record, where))
        if certificate.height != height:
            raise StorageError(f"{where}: holds the certificate of height {certificate.height}")
        return certificate

    def state(self) -> KeyValueReader:
        """A reader over the committed state; every ``get`` reads as of the current head."""
        return _StateReader(self)

    def find_logs(self, query: LogQuery, max_count: int) -> list[LogEntry]:
        """The first ``max_count`` committed logs that ``query`` selects, in chain order, read
        in one snapshot. Only the selected logs and the index entries of the query's
        addresses and topics are read, never whole blocks."""
        first = max(query.from_height, 0)
        last = min(query.to_height, (1 << (8 * keys.HEIGHT_SIZE)) - 1)
        if first > last or max_count <= 0:
            return []
        low = keys.log_position(first, 0)
        high = keys.log_position(last, keys.MAX_LOG_INDEX)
        groups = index_groups(query)
        with _lmdb_errors("read logs"), self._env.begin() as txn:
            records: Iterator[tuple[bytes, bytes | None]]
            if groups:
                positions = self._candidate_positions(txn, groups, low, high)
                records = ((p, txn.get(p, db=self._dbs.logs)) for p in positions)
            else:
                records = self._scan_items(txn, self._dbs.logs, b"", low, high)
            entries: list[LogEntry] = []
            block_hashes: dict[int, Hash32] = {}
            for position, record in records:
                where = f"logs[{position.hex()}]"
                if record is None:
                    raise StorageError(f"{where}: indexed but not stored")
                tx_index, tx_hash, log = keys.decode_log_payload(keys.unframe(record, where), where)
                if not log_matches(log, query):
                    continue
                height, log_index = keys.decode_log_position(position, where)
                if height not in block_hashes:
                    block_hashes[height] = self._log_block_hash(txn, height)
                entries.append(
                    LogEntry(
                        log=log,
                        height=height,
                        block_hash=block_hashes[height],
                        tx_hash=tx_hash,
                        tx_index=tx_index,
                        log_index=log_index,
                    )
                )
                if len(entries) >= max_count:
                    break
        return entries

    def count_logs(self, query: LogQuery, max_count: int) -> int:
        """How many committed logs ``query`` selects, counting no further than ``max_count``
        (so a caller can refuse an oversized query before :meth:`find_logs` builds it). A
        query without topic conditions is counted from index keys alone; topic conditions
        also read the candidate records, since the index ignores topic positions."""
        first = max(query.from_height, 0)
        last = min(query.to_height, (1 << (8 * keys.HEIGHT_SIZE)) - 1)
        if first > last or max_count <= 0:
            return 0
        low = keys.log_position(first, 0)
        high = keys.log_position(last, keys.MAX_LOG_INDEX)
        groups = index_groups(query)
        # Without topic positions the index decides; a wildcard position needs the log's
        # topic count, which only the log itself holds.
        index_decides = not query.topics
        count = 0
        with _lmdb_errors("count logs"), self._env.begin() as txn:
            positions = (
                self._candidate_positions(txn, groups, low, high)
                if groups
                else (
                    position
                    for position, _ in self._scan_items(txn, self._dbs.logs, b"", low, high)
                )
            )
            for position in positions:
                if not index_decides:
                    where = f"logs[{position.hex()}]"
                    record = txn.get(position, db=self._dbs.logs)
                    if record is None:
                        raise StorageError(f"{where}: indexed but not stored")
                    _, _, log = keys.decode_log_payload(keys.unframe(record, where), where)
                    if not log_matches(log, query):
                        continue
                count += 1
                if count >= max_count:
                    break
        return count

    def _index_db(self, kind: LogIndexKind) -> lmdb._Database:
        return self._dbs.log_address if kind is LogIndexKind.ADDRESS else self._dbs.log_topic

    def _candidate_positions(
        self, txn: lmdb.Transaction[bytes], groups: Sequence[IndexGroup], low: bytes, high: bytes
    ) -> Iterator[bytes]:
        """Log positions in ``low..high`` listed under some key of every group, ascending.

        The smallest group that fits :data:`SEED_SCAN_LIMIT` is scanned, or, when every group
        is larger, the first one is streamed; the other groups are checked by point lookups
        on those positions only, so a caller that stops early reads little."""
        seed_number = 0
        smallest: list[bytes] | None = None
        for number, group in enumerate(groups):
            found = list(
                itertools.islice(self._group_positions(txn, group, low, high), SEED_SCAN_LIMIT + 1)
            )
            if len(found) <= SEED_SCAN_LIMIT and (smallest is None or len(found) < len(smallest)):
                seed_number, smallest = number, found
        seed = (
            self._group_positions(txn, groups[0], low, high) if smallest is None else iter(smallest)
        )
        others = [
            (self._index_db(group.kind), group.keys)
            for number, group in enumerate(groups)
            if number != seed_number
        ]
        for position in seed:
            if all(
                any(txn.get(key + position, db=db) is not None for key in group_keys)
                for db, group_keys in others
            ):
                yield position

    def _group_positions(
        self, txn: lmdb.Transaction[bytes], group: IndexGroup, low: bytes, high: bytes
    ) -> Iterator[bytes]:
        """Positions in ``low..high`` listed under any key of ``group``, ascending, once each."""
        db = self._index_db(group.kind)
        scans = [
            (position for position, _ in self._scan_items(txn, db, key, low, high))
            for key in group.keys
        ]
        previous: bytes | None = None
        for position in heapq.merge(*scans):
            if position != previous:
                yield position
                previous = position

    @staticmethod
    def _scan_items(
        txn: lmdb.Transaction[bytes], db: lmdb._Database, prefix: bytes, low: bytes, high: bytes
    ) -> Iterator[tuple[bytes, bytes]]:
        """(position, value) of the keys ``prefix || position`` with position in
        ``low..high``, in key order."""
        cursor = txn.cursor(db=db)
        end = prefix + high
        if not cursor.set_range(prefix + low):
            return
        for key, value in cursor.iternext(keys=True, values=True):
            if key > end:
                return
            yield key[len(prefix) :], value

    def _log_block_hash(self, txn: lmdb.Transaction[bytes], height: int) -> Hash32:
        raw = txn.get(keys.height_key(height), db=self._dbs.log_blocks)
        if raw is None or len(raw) != HASH_SIZE:
            raise StorageError(f"log_blocks[{height}]: missing or malformed block hash")
        return Hash32(raw)

    def _state_get_cached(self, key: bytes) -> bytes | None:
        # Single dict operations are atomic under the GIL, so reader threads and the writer
        # share the cache without a lock; a lost insert only costs a later re-read.
        value = self._state_cache.get(key)
        if value is None:
            value = self._state_get(key)
            if value is not None:
                if len(self._state_cache) >= STATE_CACHE_ENTRIES:
                    self._state_cache.clear()
                self._state_cache[key] = value
        return value

    def _state_get(self, key: bytes) -> bytes | None:
        if not valid_key(key):
            return None
        with _lmdb_errors("read state"), self._env.begin() as txn:
            return txn.get(key, db=self._dbs.state)

    def _read_head(self, txn: lmdb.Transaction[bytes]) -> Header | None:
        record = txn.get(keys.META_HEAD, db=self._dbs.meta)
        if record is None:
            return None
        return _decode("meta[head]", Header.decode, keys.unframe(record, "meta[head]"))

    def _read_block(self, txn: lmdb.Transaction[bytes], height: int) -> Block | None:
        where = f"blocks[{height}]"
        record = txn.get(keys.height_key(height), db=self._dbs.blocks)
        if record is None:
            return None
        block = _decode(where, Block.decode, keys.unframe(record, where))
        if block.header.height != height:
            raise StorageError(f"{where}: holds the block of height {block.header.height}")
        return block

    # -- writes ------------------------------------------------------------------------------

    def commit_block(self, commit: BlockCommit) -> None:
        """Atomically append ``commit``: block, receipts, state writes, certificate, indexes
        (transactions, nonces, logs) and the new head in one write transaction.

        Raises StorageError, with nothing written, unless the block extends the head (height =
        head height + 1 and parent hash = head hash, or height 0 on an empty store), carries one
        receipt per transaction (receipt ``i`` for transaction ``i``) and a certificate, if
        any, for this very block. Index entries are never moved: should a transaction hash or
        nonce already be indexed (validation refuses replays before a block gets here), the
        first location is kept."""
        self.commit_blocks([commit])

    def commit_blocks(self, commits: Sequence[BlockCommit]) -> None:
        """Append several consecutive blocks in ONE write transaction (group commit: one
        flush to disk for all of them), each checked as :meth:`commit_block` checks one;
        the head moves to the last. All are written or, raising StorageError, none."""
        if not commits:
            return
        # Encode before taking the writer lock so that the write transaction stays short.
        records = [block_records(commit) for commit in commits]
        first = commits[0].block.header.height
        last = commits[-1].block.header.height
        action = f"commit block {first}" if first == last else f"commit blocks {first}..{last}"
        with _lmdb_errors(action), self._env.begin(write=True) as txn:
            head = self._read_head(txn)
            for commit, record in zip(commits, records, strict=True):
                check_extends(head, commit.block.header)
                self._write_block(txn, record)
                head = commit.block.header
            txn.put(keys.META_HEAD, records[-1].head, db=self._dbs.meta)
            self._head_certificate = None
        self._head_certificate = commits[-1].certificate

    def _write_block(self, txn: lmdb.Transaction[bytes], record: BlockRecords) -> None:
        dbs = self._dbs
        height = record.height
        height_key = record.height_key
        if not txn.put(height_key, record.block, append=True, db=dbs.blocks):
            raise StorageError(f"commit block {height}: blocks already holds this height")
        if not txn.put(height_key, record.receipts, append=True, db=dbs.receipts):
            raise StorageError(f"commit block {height}: receipts already holds this height")
        if not txn.put(record.block_hash, height_key, overwrite=False, db=dbs.hash_index):
            raise StorageError(f"commit block {height}: block hash already committed")
        for tx_hash, nonce, location in record.tx_entries:
            txn.put(tx_hash, location, overwrite=False, db=dbs.tx_index)
            txn.put(nonce, height_key, overwrite=False, db=dbs.nonce_index)
        if record.certificate is not None:
            txn.put(height_key, record.certificate, db=dbs.certificates)
        if record.state_items:
            txn.cursor(db=dbs.state).putmulti(record.state_items)
        logs = record.logs
        if logs.records:
            txn.put(height_key, record.block_hash, append=True, db=dbs.log_blocks)
            txn.cursor(db=dbs.logs).putmulti(logs.records, append=True)
            txn.cursor(db=dbs.log_address).putmulti([(key, b"") for key in logs.address_keys])
            txn.cursor(db=dbs.log_topic).putmulti([(key, b"") for key in logs.topic_keys])

    def rewind_to(self, height: int) -> Header:
        """Dev chain only (:mod:`node.dev_rewind` decides): discard every block above
        ``height`` with all its records and make the block at ``height`` the head, in ONE
        write transaction (see :mod:`node.storage.rewind`); returns the new head. Raises
        StorageError, with nothing changed, for a height above the head or an empty store."""
        self._head_certificate = None
        with _lmdb_errors(f"rewind to {height}"), self._env.begin(write=True) as txn:
            head = self._read_head(txn)
            if head is None:
                raise StorageError("rewind: the store is empty")
            dbs = self._dbs
            rewind_dbs = RewindDatabases(
                **{name: getattr(dbs, name) for name in RewindDatabases.__dataclass_fields__}
            )
            return rewind_blocks(txn, rewind_dbs, head, height)

    def put_commit_certificate(self, height: int, certificate: CommitCertificate) -> None:
        """Store (or replace) the certificate of the already committed block at ``height``,
        in one write transaction. Raises StorageError, with nothing written, if no block is
        committed at ``height`` or the certificate is for another block."""
        if certificate.height != height:
            raise StorageError(
                f"certificate of height {certificate.height} offered for height {height}"
            )
        record = keys.frame(certificate.encode())
        height_key = keys.height_key(height)
        action = f"store certificate {height}"
        self._head_certificate = None
        with _lmdb_errors(action), self._env.begin(write=True) as txn:
            raw = txn.get(certificate.block_hash, db=self._dbs.hash_index)
            if raw is None or keys.decode_height(raw, action) != height:
                raise StorageError(f"{action}: no committed block at this height has that hash")
            txn.put(height_key, record, db=self._dbs.certificates)


if TYPE_CHECKING:

    def _conforms_to_protocol(store: LmdbBlockStore) -> BlockStore:
        return store
