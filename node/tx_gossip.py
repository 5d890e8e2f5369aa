"""Transaction gossip between validators: every transaction a node admits is sent once to
its peers, and every transaction a peer sends is checked like one from JSON-RPC and pooled.
So a transaction accepted by any validator reaches the pool of every proposer, and waits
there until a block commits it."""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor

from chain.errors import ChainError
from chain.primitives import Hash32
from node.mempool import Mempool
from node.p2p import FrameKind, Network


class TxGossip:
    """Sends this node's new pending transactions to its peers and pools theirs."""

    def __init__(self, mempool: Mempool, network: Network, readers: Executor) -> None:
        """``readers`` runs the admission checks of received transactions."""
        self.mempool = mempool
        self.network = network
        self._readers = readers
        self._gossiped: set[Hash32] = set()
        self._scheduled = False

    async def on_frame(self, body: bytes) -> None:
        """Check and pool a transaction a peer sent; refusals are silent (already pooled or
        committed, expired, not permitted: nothing to do)."""
        try:
            tx = await asyncio.get_running_loop().run_in_executor(
                self._readers, self.mempool.check, body
            )
            self._gossiped.add(tx.hash)
            self.mempool.add(tx)
        except ChainError:
            pass

    def schedule(self) -> None:
        """Flush on the next turn of the event loop (once however many arrive meanwhile)."""
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        """Send every pending transaction not sent or received before."""
        self._scheduled = False
        pending = tuple(self.mempool.pending())
        for tx in pending:
            if tx.hash not in self._gossiped:
                self._gossiped.add(tx.hash)
                self.network.broadcast(FrameKind.TX, tx.encode())
        if len(self._gossiped) > 4 * max(len(pending), 1024):
            self._gossiped = {tx.hash for tx in pending}
