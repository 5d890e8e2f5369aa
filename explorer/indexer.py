"""The indexer: follows a node from the explorer's cursor to the node's head, checking and
indexing each block, then waits for the next head announced on the WebSocket.

It reads blocks in batches (one JSON-RPC batch for the blocks and certificates of a range,
one for their receipts), checks each (:func:`explorer.block_check.check_block`) against the
validator set it follows itself, and writes each block with the cursor in one transaction.
A refused block stops the indexer where it is: nothing after it is indexed, and the reason is
logged. A block the node has not certified yet (its head, for an instant) is read again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from chain.commit import ValidatorSet
from chain.genesis import Genesis
from chain.types import Header
from contracts.validators import VALIDATOR_GOVERNANCE_ADDRESS
from explorer.block_check import BlockRefused, ValidatorTimeline, check_block
from explorer.block_rows import BlockRows, build_rows, hex0x, set_change_of
from explorer.decoding import ContractBook
from explorer.node_feed import HeadWatcher, NodeFeed, NodeUnavailable, chunks
from explorer.store import Store

log = logging.getLogger(__name__)

DEFAULT_BATCH_BLOCKS = 25
"""Blocks read per round of batched requests."""


REFUSED_BACKOFF = 5
"""After a refused block, wait this many poll intervals before asking the node again."""


@dataclass(frozen=True)
class CatchUp:
    """What one :meth:`Indexer.catch_up` did."""

    indexed: int
    """Blocks indexed."""
    head: int
    """The node's head height when it started."""
    seconds: float
    """Wall time it took."""


class Indexer:
    """Indexes the chain of one node into one store."""

    def __init__(
        self,
        store: Store,
        feed: NodeFeed,
        genesis: Genesis,
        *,
        batch_blocks: int = DEFAULT_BATCH_BLOCKS,
    ) -> None:
        self.store = store
        self.feed = feed
        self.genesis = genesis
        self.batch_blocks = batch_blocks
        self.book = ContractBook.for_genesis(genesis)
        self.timeline = ValidatorTimeline(genesis.validator_set())
        self._record_genesis()
        for address, name in store.placed_contracts():
            self.book.place(bytes.fromhex(address[2:]), name)
        self.proposal_keys = store.proposal_keys()
        for row in store.set_changes():
            self.timeline.add(set_change_of(row))
        cursor = store.cursor()
        self.parent: Header | None = None
        if cursor is not None:
            raw = store.header_raw(cursor.height)
            assert raw is not None, "the cursor names a block the index holds"
            self.parent = Header.decode(raw)

    def _record_genesis(self) -> None:
        self.store.write_genesis_contracts(
            [
                {"address": hex0x(c.address), "name": c.name, "height": 0, "tx_hash": None}
                for c in self.genesis.system_contracts
            ]
        )
        self.store.write_genesis_validators(
            [
                {
                    "effective_height": 0,
                    "executed_height": 0,
                    "address": hex0x(v.address),
                    "public_key": hex0x(v.public_key),
                    "power": v.power,
                    "proposal_id": None,
                }
                for v in self.genesis.validator_set().validators
            ]
        )

    @property
    def next_height(self) -> int:
        """The height to index next."""
        return 0 if self.parent is None else self.parent.height + 1

    def validators_at(self, height: int) -> ValidatorSet:
        """The set ruling ``height`` (the genesis set on a chain without governance)."""
        if not any(
            c.address == VALIDATOR_GOVERNANCE_ADDRESS for c in self.genesis.system_contracts
        ):
            return self.timeline.genesis_set
        return self.timeline.set_at(height)

    def catch_up(self, *, stop_at: int | None = None) -> CatchUp:
        """Index every certified block up to the node's head (or ``stop_at``). Raises
        BlockRefused for a block that fails its checks, NodeUnavailable when the node cannot
        be read."""
        started = time.perf_counter()
        head = self.feed.head_height()
        target = head if stop_at is None else min(head, stop_at)
        indexed = 0
        for heights in chunks(self.next_height, target, self.batch_blocks):
            checked: list[BlockRows] = []
            parent = self.parent
            try:
                for fetched in self.feed.fetch_blocks(heights):
                    if fetched.height > 0 and fetched.certificate is None:
                        break
                    validators = self.validators_at(fetched.height)
                    check_block(fetched, genesis=self.genesis, parent=parent, validators=validators)
                    rows = build_rows(
                        fetched,
                        validators=validators,
                        book=self.book,
                        proposal_keys=self.proposal_keys,
                    )
                    for change in rows.set_changes:
                        self.timeline.add(set_change_of(change))
                    checked.append(rows)
                    parent = fetched.header
            finally:
                # The blocks checked before a refusal are indexed; the refused one is not.
                self.store.write_blocks(checked)
                self.parent = parent
                indexed += len(checked)
            if len(checked) < len(heights):
                break
        return CatchUp(indexed, head, time.perf_counter() - started)

    def follow(
        self,
        *,
        should_stop: Callable[[], bool] = lambda: False,
        poll_seconds: float = 2.0,
    ) -> None:
        """Catch up, then wait for new heads and catch up again, until ``should_stop``. An
        unreachable node (or one whose answers do not parse) is retried; so is a refused
        block, with the reason logged each time and nothing indexed from it on: the index
        stays at the last block that checked, and goes on once the node serves the chain."""
        watcher = HeadWatcher(self.feed.url)
        try:
            while not should_stop():
                try:
                    done = self.catch_up()
                except NodeUnavailable as exc:
                    log.warning("node unavailable: %s", exc)
                    time.sleep(poll_seconds)
                    continue
                except BlockRefused as exc:
                    log.error("block refused, nothing indexed from it: %s", exc)
                    time.sleep(poll_seconds * REFUSED_BACKOFF)
                    continue
                if done.indexed:
                    log.info("indexed to %d", self.next_height - 1)
                if done.indexed == 0 or self.next_height > done.head:
                    watcher.wait(poll_seconds if self.next_height > done.head else 0.2)
        finally:
            watcher.close()
