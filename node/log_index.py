"""Log queries: what an eth_getLogs call or a log filter selects, and how the store's log
index answers it.

Pure: no storage here. :class:`node.storage.lmdb_store.LmdbBlockStore` keeps, in the same
write transaction as each block, one entry per log under its emitting address and one under
each of its topics (any position). :func:`index_groups` turns a :class:`LogQuery` into the
index lookups that narrow the candidates: a log is a candidate when, for every group, the
index holds it under at least one key of that group. Topics are indexed without their
position, so :func:`log_matches` has the last word on every candidate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from chain.primitives import Address, Hash32
from chain.types import Block, Log, Receipt


@dataclass(frozen=True)
class LogQuery:
    """Which logs an eth_getLogs call or a log filter selects."""

    from_height: int
    """Lowest block height, inclusive."""
    to_height: int
    """Highest block height, inclusive."""
    addresses: tuple[Address, ...] | None = None
    """Emitting contracts to select; ``None`` selects every contract."""
    topics: tuple[tuple[Hash32, ...] | None, ...] = ()
    """Per topic position: the accepted values (any of them), or ``None`` for any value."""


@dataclass(frozen=True)
class LogEntry:
    """A committed log with its position in the chain."""

    log: Log
    """The log itself."""
    height: int
    """Height of the block holding it."""
    block_hash: Hash32
    """Hash of that block."""
    tx_hash: Hash32
    """The transaction that emitted it."""
    tx_index: int
    """Position of that transaction in the block."""
    log_index: int
    """Position of the log among all logs of the block."""


class LogIndexKind(Enum):
    """The two log indexes of the store."""

    ADDRESS = "address"
    """Logs by emitting contract address."""
    TOPIC = "topic"
    """Logs by topic, at any position."""


@dataclass(frozen=True)
class IndexGroup:
    """One condition of a query on the index: the log is listed under any of ``keys``."""

    kind: LogIndexKind
    """Which index to look in."""
    keys: tuple[bytes, ...]
    """Accepted keys (addresses or topics); empty means that nothing matches."""


def log_matches(log: Log, query: LogQuery) -> bool:
    """Whether ``log`` satisfies the address and topic criteria of ``query``."""
    if query.addresses is not None and log.address not in query.addresses:
        return False
    # A position the query names, even as a wildcard, needs a topic there (execution-apis).
    if len(query.topics) > len(log.topics):
        return False
    for position, wanted in enumerate(query.topics):
        if wanted is not None and log.topics[position] not in wanted:
            return False
    return True


def index_groups(query: LogQuery) -> list[IndexGroup]:
    """The index conditions every log selected by ``query`` meets (a superset test: check
    candidates with :func:`log_matches`). No group means that every log is a candidate."""
    groups: list[IndexGroup] = []
    if query.addresses is not None:
        groups.append(IndexGroup(LogIndexKind.ADDRESS, tuple(dict.fromkeys(query.addresses))))
    seen: set[tuple[Hash32, ...]] = set()
    for wanted in query.topics:
        if wanted is None or wanted in seen:
            continue
        seen.add(wanted)
        groups.append(IndexGroup(LogIndexKind.TOPIC, tuple(dict.fromkeys(wanted))))
    return groups


def block_log_entries(block: Block, receipts: Sequence[Receipt], query: LogQuery) -> list[LogEntry]:
    """Every log of ``block`` that ``query`` selects, in block order."""
    entries: list[LogEntry] = []
    log_index = 0
    for tx_index, receipt in enumerate(receipts):
        for log in receipt.logs:
            if log_matches(log, query):
                entries.append(
                    LogEntry(
                        log=log,
                        height=block.header.height,
                        block_hash=block.hash,
                        tx_hash=receipt.tx_hash,
                        tx_index=tx_index,
                        log_index=log_index,
                    )
                )
            log_index += 1
    return entries
