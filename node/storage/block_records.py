"""Encoding a block's records for the LMDB write transaction, and the checks that need no
stored data (see :mod:`node.storage.lmdb_store` for the transaction and
:mod:`node.storage.keys` for the layout). Pure: nothing here opens or reads the store."""

from __future__ import annotations

from dataclasses import dataclass

from chain import encoding as enc
from chain.errors import StorageError
from chain.storage import BlockCommit
from chain.types import Header, Receipt
from node.storage import keys

MAX_STATE_KEY_SIZE = 511
"""LMDB's default maximum key size."""


def encode_receipts(receipts: tuple[Receipt, ...]) -> bytes:
    return enc.encode([receipt.to_rlp() for receipt in receipts])


@dataclass(frozen=True)
class BlockLogs:
    """The log entries of one block, encoded for the write transaction."""

    records: list[tuple[bytes, bytes]]
    """Log position -> record, in position order."""
    address_keys: list[bytes]
    """address || log position, sorted."""
    topic_keys: list[bytes]
    """topic || log position, sorted."""


def block_logs(commit: BlockCommit) -> BlockLogs:
    height = commit.block.header.height
    records: list[tuple[bytes, bytes]] = []
    address_keys: list[bytes] = []
    topic_keys: list[bytes] = []
    for tx_index, receipt in enumerate(commit.receipts):
        for log in receipt.logs:
            position = keys.log_position(height, len(records))
            records.append((position, keys.frame(keys.log_payload(tx_index, receipt.tx_hash, log))))
            address_keys.append(log.address + position)
            topic_keys.extend(topic + position for topic in dict.fromkeys(log.topics))
    return BlockLogs(records, sorted(address_keys), sorted(topic_keys))


def valid_height(height: int) -> bool:
    return 0 <= height < 1 << (8 * keys.HEIGHT_SIZE)


def valid_key(key: bytes) -> bool:
    """Whether LMDB accepts ``key`` (1 to 511 bytes); no longer or empty key is ever stored."""
    return 0 < len(key) <= MAX_STATE_KEY_SIZE


def check_commit_contents(commit: BlockCommit) -> None:
    """Checks that need no stored data: receipts and certificate belong to the block and the
    state keys fit LMDB."""
    block = commit.block
    if len(commit.receipts) != len(block.transactions):
        raise StorageError(
            f"block {block.header.height}: {len(commit.receipts)} receipts for "
            f"{len(block.transactions)} transactions"
        )
    for index, (tx, receipt) in enumerate(zip(block.transactions, commit.receipts, strict=True)):
        if receipt.tx_hash != tx.hash:
            raise StorageError(
                f"block {block.header.height}: receipt {index} belongs to another transaction"
            )
    certificate = commit.certificate
    if certificate is not None and (
        certificate.height != block.header.height or certificate.block_hash != block.hash
    ):
        raise StorageError(f"block {block.header.height}: certificate is for another block")
    for key in commit.state_writes:
        if not valid_key(key):
            raise StorageError(
                f"block {block.header.height}: state key of {len(key)} bytes "
                f"(must be 1..{MAX_STATE_KEY_SIZE})"
            )


def check_extends(head: Header | None, header: Header) -> None:
    """Raise StorageError unless ``header`` is the next block after ``head``."""
    if head is None:
        if header.height != 0:
            raise StorageError(f"empty store: first block must be height 0, not {header.height}")
        return
    if header.height != head.height + 1:
        raise StorageError(f"block {header.height} does not follow head {head.height}")
    if header.parent_hash != head.hash:
        raise StorageError(f"block {header.height}: parent hash is not the head's hash")


@dataclass(frozen=True)
class BlockRecords:
    """One block's records, encoded for the write transaction."""

    height: int
    height_key: bytes
    block_hash: bytes
    block: bytes
    head: bytes
    receipts: bytes
    certificate: bytes | None
    tx_entries: list[tuple[bytes, bytes, bytes]]
    """(transaction hash, replay nonce, location) per transaction."""
    state_items: list[tuple[bytes, bytes]]
    logs: BlockLogs


def block_records(commit: BlockCommit) -> BlockRecords:
    """Check ``commit``'s contents and encode every record it writes."""
    check_commit_contents(commit)
    block = commit.block
    header = block.header
    height = header.height
    return BlockRecords(
        height=height,
        height_key=keys.height_key(height),
        block_hash=block.hash,
        block=keys.frame(block.encode()),
        head=keys.frame(header.encode()),
        receipts=keys.frame(encode_receipts(commit.receipts)),
        certificate=None if commit.certificate is None else keys.frame(commit.certificate.encode()),
        tx_entries=[
            (tx.hash, tx.nonce, keys.tx_location_value(height, index))
            for index, tx in enumerate(block.transactions)
        ],
        state_items=sorted(commit.state_writes.items()),
        logs=block_logs(commit),
    )
