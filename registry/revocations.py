"""The Notary's revocations, followed from its events, so that the status of a record is a
lookup in memory instead of an ``eth_call`` per record.

Every registry process keeps its own index: a loop asks the node for the head height and
for the ``BatchRevoked`` and ``LeafRevoked`` events since the last height it saw (every
``REVOCATION_POLL_S``). The index answers for a leaf exactly as ``Notary.statusAt`` does at
the indexed height — the leaf's own revocation first, then its batch's — but only while it
is fresh: when its last successful poll is older than ``REVOCATION_STALE_S`` (the node is
away) or it has not reached the block that anchored the batch, it answers nothing and the
caller asks the chain itself, which with an unreachable node gives UNAVAILABLE. So the
index is never more than about a second behind, like the live reads it replaces.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from eth_utils.crypto import keccak

from chain.primitives import Hash32
from chain.types import Log
from contracts.trust import LeafStatus
from registry.chain_gateway import NOTARY, ChainGateway

logger = logging.getLogger(__name__)

BATCH_REVOKED_TOPIC = Hash32(keccak(text="BatchRevoked(bytes32,address,uint16)"))
"""``Notary.BatchRevoked(bytes32 indexed root, address indexed by, uint16 reason)``."""
LEAF_REVOKED_TOPIC = Hash32(keccak(text="LeafRevoked(bytes32,bytes32,address,uint256,uint16)"))
"""``Notary.LeafRevoked(bytes32 indexed root, bytes32 indexed leafHash, address indexed by,
uint256 leafIndex, uint16 reason)``."""

REVOCATION_POLL_S = 0.5
"""Seconds between two polls of the node."""
REVOCATION_STALE_S = 1.5
"""Age of the last successful poll past which the index no longer answers."""


@dataclass(frozen=True)
class Revocation:
    """One revocation event."""

    at_block: int
    """The block that revoked."""
    reason: int
    """The reason code."""


class RevocationIndex:
    """Revoked batches and leaves of the Notary up to an indexed height (thread-safe)."""

    def __init__(
        self,
        gateway: ChainGateway,
        *,
        stale_after: float = REVOCATION_STALE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Follow the Notary of ``gateway``; answer while the last poll is younger than
        ``stale_after`` seconds."""
        self.gateway = gateway
        self.stale_after = stale_after
        self._clock = clock
        self._lock = threading.Lock()
        self._batches: dict[bytes, Revocation] = {}
        self._leaves: dict[tuple[bytes, bytes], Revocation] = {}
        self._height = -1
        self._polled_at: float | None = None

    @property
    def height(self) -> int:
        """The last block whose events are in the index (-1 before the first poll)."""
        with self._lock:
            return self._height

    def poll(self) -> int:
        """Take in the events of the blocks since the last poll; returns how many. Raises
        what the node's client raises (the index then goes stale by itself)."""
        notary = self.gateway.contracts().notary
        reader = self.gateway.reader
        head = reader.block_number()
        start = self.height + 1
        batches: dict[bytes, Revocation] = {}
        leaves: dict[tuple[bytes, bytes], Revocation] = {}
        if head >= start:
            for entry in reader.get_logs(
                address=notary, topics=[BATCH_REVOKED_TOPIC], from_block=start, to_block=head
            ):
                event = NOTARY.decode_log(Log(entry.address, entry.topics, entry.data))
                batches[bytes(event.args["root"])] = Revocation(
                    entry.block_number, int(event.args["reason"])
                )
            for entry in reader.get_logs(
                address=notary, topics=[LEAF_REVOKED_TOPIC], from_block=start, to_block=head
            ):
                event = NOTARY.decode_log(Log(entry.address, entry.topics, entry.data))
                key = (bytes(event.args["root"]), bytes(event.args["leafHash"]))
                leaves[key] = Revocation(entry.block_number, int(event.args["reason"]))
        with self._lock:
            if start != self._height + 1:
                return 0  # another poll ran meanwhile; this one's range is taken
            self._batches.update(batches)
            self._leaves.update(leaves)
            self._height = max(self._height, head)
            self._polled_at = self._clock()
        return len(batches) + len(leaves)

    def status(
        self, root: bytes, leaf_hash: bytes, anchored_at_block: int
    ) -> tuple[LeafStatus, int] | None:
        """``Notary.statusAt(root, leaf_hash, height)`` at the indexed height, and that
        height; None when the index is stale or behind the anchoring block."""
        with self._lock:
            polled_at, height = self._polled_at, self._height
            if polled_at is None or self._clock() - polled_at > self.stale_after:
                return None
            if height < anchored_at_block:
                return None
            revoked = self._leaves.get((bytes(root), bytes(leaf_hash)))
            if revoked is None:
                revoked = self._batches.get(bytes(root))
        if revoked is None:
            return LeafStatus(issued=True, revoked=False, revoked_at_block=0, reason=0), height
        return (
            LeafStatus(
                issued=True, revoked=True, revoked_at_block=revoked.at_block, reason=revoked.reason
            ),
            height,
        )


async def run_revocation_index(index: RevocationIndex, interval: float = REVOCATION_POLL_S) -> None:
    """Poll ``index`` every ``interval`` seconds until cancelled; failures are logged (once
    per outage) and the index goes stale meanwhile."""
    failing = False
    while True:
        try:
            found = await asyncio.to_thread(index.poll)
        except Exception as exc:
            if not failing:
                logger.warning("revocation index paused: %s", exc)
            failing = True
        else:
            if failing:
                logger.info("revocation index resumed at block %d", index.height)
            failing = False
            if found:
                logger.info("%d revocations indexed up to block %d", found, index.height)
        await asyncio.sleep(interval)


__all__ = [
    "BATCH_REVOKED_TOPIC",
    "LEAF_REVOKED_TOPIC",
    "Revocation",
    "RevocationIndex",
    "run_revocation_index",
]
