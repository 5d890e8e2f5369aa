"""What every group of JSON-RPC handlers shares: the ledger, the mempool, the configuration,
the reader thread pool, and the selection of a block by number, tag or hash."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, TypeVar

from chain.types import Header
from node.config import NodeConfig
from node.ledger import Ledger
from node.mempool import Mempool
from node.rpc import params as p
from node.rpc.errors import InvalidParams, NotFound

_T = TypeVar("_T")


class RpcContext:
    """The node's ledger, mempool and settings as the handlers see them."""

    def __init__(
        self,
        ledger: Ledger,
        mempool: Mempool,
        config: NodeConfig,
        readers: Executor,
        peers: Callable[[], list[dict[str, Any]]],
    ) -> None:
        """``readers`` runs the slow handlers off the event loop; ``peers`` lists the
        connected validator peers."""
        self.ledger = ledger
        self.mempool = mempool
        self.config = config
        self.readers = readers
        self.peers = peers

    async def off_loop(self, function: Callable[..., _T], *args: Any) -> _T:
        """Run ``function(*args)`` on the reader pool and await its result."""
        return await asyncio.get_running_loop().run_in_executor(self.readers, function, *args)

    def header(self, selector: p.BlockSelector) -> Header | None:
        """The header a block selector names, or None if there is no such block."""
        ledger = self.ledger
        if selector.block_hash is not None:
            height = ledger.height_of(selector.block_hash)
            block = None if height is None else ledger.block(height)
            return None if block is None else block.header
        if selector.tag is not None:
            if selector.tag == "earliest":
                block = ledger.block(0)
                return None if block is None else block.header
            return ledger.head
        assert selector.number is not None
        head = ledger.head
        if selector.number == head.height:
            return head
        block = ledger.block(selector.number)
        return None if block is None else block.header

    def state_header(self, value: Any, field_name: str) -> Header:
        """The header of the block parameter ``value``; NotFound if there is none."""
        header = self.header(p.block_selector(value, field_name))
        if header is None:
            raise NotFound("block not found", {"block": value})
        return header

    def height(self, value: Any, field_name: str, default: str) -> int:
        """A block parameter of a log query, as a height (a future number stays as is)."""
        selector = p.block_selector(value, field_name, default)
        if selector.block_hash is not None:
            raise InvalidParams(f"{field_name}: a block hash is not allowed here")
        if selector.tag == "earliest":
            return 0
        if selector.tag is not None:
            return self.ledger.head.height
        assert selector.number is not None
        return selector.number
