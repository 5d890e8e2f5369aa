"""Block sync: how a validator that lagged or restarted catches up with its peers.

Peers announce their committed height in STATUS frames. A peer reporting a higher height is
asked for blocks, up to :data:`SYNC_BATCH_BLOCKS` per request, and the next batch is asked
for before the current one is applied, so transfer and execution overlap. Each block goes
through the same commit path as a block decided by consensus (the driver's ``apply``:
:meth:`node.ledger.Ledger.commit_certified`), so it is judged by every rule of block validity
(:mod:`node.block_validity`): a certificate that verifies against the validator set of its
height, the size limit, valid and permitted transactions, and re-execution that matches its
header. A block that breaks a rule is refused, counted (``sync_rejected``) and logged with
its height; nothing of it is stored.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor

from chain import encoding as enc
from chain.errors import EncodingError
from chain.types import Block, CommitCertificate
from node.ledger import BlockRejected, Ledger
from node.p2p import FrameKind, Network

log = logging.getLogger(__name__)

SYNC_BATCH_BLOCKS = 128
"""Most blocks asked for in one sync request."""
SYNC_TIMEOUT_S = 5.0
"""A sync request unanswered this long is given up and may be sent again."""

ApplyBlock = Callable[[Block, CommitCertificate], Awaitable[bool]]
"""Commits a block if it is the next one (returns whether it did); raises BlockRejected."""


class BlockSync:
    """Asks peers that are ahead for blocks, answers peers that are behind, and applies what
    arrives through the driver's commit path."""

    def __init__(
        self,
        ledger: Ledger,
        network: Network,
        readers: Executor,
        counters: Counter[str],
        *,
        apply: ApplyBlock,
        on_applied: Callable[[], None],
        max_frame_bytes: int,
    ) -> None:
        """``apply`` commits one block; ``on_applied`` runs after a batch applied at least
        one block (the driver starts the next height); ``readers`` runs block reads."""
        self.ledger = ledger
        self.network = network
        self.counters = counters
        self.peer_heights: dict[bytes, int] = {}
        """The committed height each peer last announced."""
        self._readers = readers
        self._apply = apply
        self._on_applied = on_applied
        self._max_frame_bytes = max_frame_bytes
        self._in_flight: float | None = None
        self._lock = asyncio.Lock()

    def on_status(self, peer_key: bytes, body: bytes) -> None:
        """Record a peer's announced height; sync if it is ahead."""
        try:
            (height_item,) = enc.as_list(enc.decode(body), "Status", 1)
            self.peer_heights[peer_key] = enc.decode_int(height_item, "Status.height")
        except EncodingError:
            self.counters["malformed_messages"] += 1
            return
        self.maybe_sync()

    def maybe_sync(self) -> None:
        """Ask the connected peer with the highest height for the blocks after the head,
        unless a request is in flight."""
        head = self.ledger.head.height
        now = time.monotonic()
        if self._in_flight is not None and now - self._in_flight < SYNC_TIMEOUT_S:
            return
        ahead = [(h, k) for k, h in self.peer_heights.items() if h > head]
        connected = set(self.network.connected())
        ahead = [(h, k) for h, k in ahead if k in connected]
        if not ahead:
            return
        _, peer_key = max(ahead)
        self._request_blocks(peer_key, head + 1)

    def _request_blocks(self, peer_key: bytes, first: int) -> None:
        self._in_flight = time.monotonic()
        request = enc.encode([enc.encode_int(first), enc.encode_int(SYNC_BATCH_BLOCKS)])
        self.network.send(peer_key, FrameKind.SYNC_REQUEST, request)

    async def on_request(self, peer_key: bytes, body: bytes) -> None:
        """Answer a peer's request with the committed blocks it asks for, as many as fit in
        half a frame (at least one)."""
        try:
            first_item, count_item = enc.as_list(enc.decode(body), "SyncRequest", 2)
            first = enc.decode_int(first_item, "SyncRequest.from")
            count = min(enc.decode_int(count_item, "SyncRequest.count"), SYNC_BATCH_BLOCKS)
        except EncodingError:
            self.counters["malformed_messages"] += 1
            return
        budget = self._max_frame_bytes // 2
        entries = await asyncio.get_running_loop().run_in_executor(
            self._readers, self._read_blocks, first, count, budget
        )
        if entries:
            self.network.send(peer_key, FrameKind.SYNC_RESPONSE, enc.encode(entries))

    def _read_blocks(self, first: int, count: int, budget: int) -> list[enc.RLPItem]:
        entries: list[enc.RLPItem] = []
        size = 0
        for height in range(max(first, 1), first + count):
            block = self.ledger.block(height)
            certificate = self.ledger.certificate(height)
            if block is None or certificate is None:
                break
            block_bytes, certificate_bytes = block.encode(), certificate.encode()
            size += len(block_bytes) + len(certificate_bytes)
            if entries and size > budget:
                break
            entries.append([block_bytes, certificate_bytes])
        return entries

    async def on_response(self, peer_key: bytes, body: bytes) -> None:
        """Apply a batch of synced blocks in order. Before applying, the next batch is asked
        for, so that the transfer of one batch overlaps the execution of the previous."""
        try:
            items = enc.as_list(enc.decode(body), "SyncResponse")
            pairs = []
            for item in items:
                block_raw, certificate_raw = enc.as_list(item, "SyncEntry", 2)
                pairs.append(
                    (
                        Block.decode(enc.as_bytes(block_raw, "SyncEntry.block")),
                        CommitCertificate.decode(
                            enc.as_bytes(certificate_raw, "SyncEntry.certificate")
                        ),
                    )
                )
        except EncodingError:
            self.counters["malformed_messages"] += 1
            self._in_flight = None
            return
        last = pairs[-1][0].header.height if pairs else 0
        if pairs and self.peer_heights.get(peer_key, 0) > last:
            self._request_blocks(peer_key, last + 1)
        else:
            self._in_flight = None
        applied = 0
        async with self._lock:
            for block, certificate in pairs:
                try:
                    if await self._apply(block, certificate):
                        applied += 1
                except BlockRejected as exc:
                    self.counters["sync_rejected"] += 1
                    self._in_flight = None
                    log.warning("sync: rejecting block %d: %s", block.header.height, exc)
                    break
        if applied:
            self.counters["synced_blocks"] += applied
            self._on_applied()
            self.maybe_sync()
