"""Log queries and installed filters: ``eth_getLogs``, ``eth_newFilter``,
``eth_newBlockFilter``, ``eth_newPendingTransactionFilter``, ``eth_getFilterChanges``,
``eth_getFilterLogs``, ``eth_uninstallFilter``.

A range whose ``fromBlock`` lies above its ``toBlock`` is refused (-32602), as the
execution-apis spec and geth do; a filter whose ``toBlock`` follows the head is not checked
against the head, so it may start in the future. ``pending`` as a log query bound means the
head (the pool's logs do not exist before its block)."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field, replace
from typing import Any

from chain.primitives import Hash32
from node.log_index import LogQuery
from node.rpc import format as fmt
from node.rpc import params as p
from node.rpc.context import RpcContext
from node.rpc.errors import InvalidParams, LimitExceeded, NotFound

_MAX_BLOCK_FILTER_CHANGES = 10_000


@dataclass
class _Filter:
    """An installed filter: ``next_height`` is the first block not yet reported."""

    kind: str
    next_height: int
    query: LogQuery | None = None
    open_ended: bool = True
    last_poll: float = field(default_factory=time.monotonic)
    reported: set[Hash32] = field(default_factory=set)
    """Pending filters: hashes of pool transactions already reported."""


class FilterMethods:
    """Log and filter handlers, and the installed filters."""

    def __init__(self, ctx: RpcContext) -> None:
        self.ctx = ctx
        self._filters: dict[str, _Filter] = {}
        self._filter_ids = itertools.count(1)
        ctx.ledger.rewind_listeners.append(self._rewound)

    def _rewound(self, height: int) -> None:
        """The dev chain went back to ``height`` (evm_revert): blocks above it are gone and
        new ones will take their heights, so every filter reports again from there."""
        for installed in list(self._filters.values()):
            start = height + 1
            if installed.query is not None:
                start = max(start, installed.query.from_height)
            installed.next_height = min(installed.next_height, start)

    def _log_query(self, value: Any, follows_head: bool = False) -> tuple[LogQuery, bool]:
        """The query of a filter object, and whether its range follows the head. With
        ``follows_head`` (an installed filter) a range open to the head may start above it."""
        criteria = p.optional_object(value, "filter")
        unknown = set(criteria) - {"fromBlock", "toBlock", "address", "topics", "blockHash"}
        if unknown:
            raise InvalidParams(f"filter: unknown fields {sorted(unknown)}")
        addresses = p.address_list(criteria.get("address"), "filter.address")
        topics = p.topic_filter(criteria.get("topics"), "filter.topics")
        if criteria.get("blockHash") is not None:
            if criteria.get("fromBlock") is not None or criteria.get("toBlock") is not None:
                raise InvalidParams("filter: blockHash excludes fromBlock and toBlock")
            block_hash = p.hash32(criteria["blockHash"], "filter.blockHash")
            height = self.ctx.ledger.height_of(block_hash)
            if height is None:
                raise NotFound("block not found", {"blockHash": criteria["blockHash"]})
            return LogQuery(height, height, addresses, topics), False
        from_height = self.ctx.height(criteria.get("fromBlock"), "filter.fromBlock", "latest")
        to_raw = criteria.get("toBlock")
        open_ended = to_raw is None or to_raw in ("latest", "pending", "safe", "finalized")
        to_height = self.ctx.height(to_raw, "filter.toBlock", "latest")
        if from_height > to_height and not (open_ended and follows_head):
            raise InvalidParams(
                f"filter: fromBlock {from_height} is above toBlock {to_height}",
                {"fromBlock": from_height, "toBlock": to_height},
            )
        return LogQuery(from_height, to_height, addresses, topics), open_ended

    def _run_log_query(self, query: LogQuery) -> list[dict[str, Any]]:
        last = min(query.to_height, self.ctx.ledger.head.height)
        if last - query.from_height + 1 > self.ctx.config.max_block_range:
            raise LimitExceeded(
                f"block range wider than {self.ctx.config.max_block_range} blocks",
                {"fromBlock": query.from_height, "toBlock": query.to_height},
            )
        limit = self.ctx.config.max_log_results
        too_many = LimitExceeded(f"query returns more than {limit} logs; narrow it")
        # Counting reads index keys only, so an oversized query is refused without building
        # the entries it selects.
        if self.ctx.ledger.store.count_logs(query, limit + 1) > limit:
            raise too_many
        try:
            entries = self.ctx.ledger.logs(query, limit)
        except OverflowError as exc:
            raise too_many from exc
        return [fmt.log_entry_json(entry) for entry in entries]

    async def eth_get_logs(self, params: list[Any]) -> list[dict[str, Any]]:
        """Logs matching a filter object (address, topics, fromBlock/toBlock or blockHash)."""
        (criteria,) = p.positional(params, 1, 1, "eth_getLogs")
        query, _ = self._log_query(criteria)
        return await self.ctx.off_loop(self._run_log_query, query)

    def _install(self, installed: _Filter) -> str:
        self._expire_filters()
        if len(self._filters) >= self.ctx.config.max_filters:
            raise LimitExceeded(f"more than {self.ctx.config.max_filters} filters installed")
        filter_id = fmt.quantity(next(self._filter_ids))
        self._filters[filter_id] = installed
        return filter_id

    def _expire_filters(self) -> None:
        deadline = time.monotonic() - self.ctx.config.filter_timeout_s
        for filter_id in [k for k, f in self._filters.items() if f.last_poll < deadline]:
            del self._filters[filter_id]

    def _get_filter(self, value: Any) -> tuple[str, _Filter]:
        if not isinstance(value, str) or len(value) > 66:
            raise InvalidParams("filterId: expected a filter id string")
        self._expire_filters()
        installed = self._filters.get(value)
        if installed is None:
            raise NotFound("filter not found", {"filterId": value})
        installed.last_poll = time.monotonic()
        return value, installed

    async def eth_new_filter(self, params: list[Any]) -> str:
        """Install a log filter; eth_getFilterChanges returns logs of blocks committed since."""
        (criteria,) = p.positional(params, 1, 1, "eth_newFilter")
        query, open_ended = self._log_query(criteria, follows_head=True)
        next_height = max(query.from_height, self.ctx.ledger.head.height + 1)
        return self._install(_Filter("logs", next_height, query, open_ended))

    async def eth_new_block_filter(self, params: list[Any]) -> str:
        """Install a filter reporting hashes of blocks committed after now."""
        p.positional(params, 0, 0, "eth_newBlockFilter")
        return self._install(_Filter("blocks", self.ctx.ledger.head.height + 1))

    async def eth_new_pending_transaction_filter(self, params: list[Any]) -> str:
        """Install a filter reporting hashes of transactions that arrive after now."""
        p.positional(params, 0, 0, "eth_newPendingTransactionFilter")
        installed = _Filter("pending", self.ctx.ledger.head.height + 1)
        installed.reported = {tx.hash for tx in self.ctx.mempool.pending()}
        return self._install(installed)

    def _pending_changes(self, installed: _Filter, head: int) -> list[str]:
        """Transactions that arrived since the last poll: those in the pool not yet
        reported, and those committed meanwhile without having been seen in the pool."""
        hashes: list[str] = []
        last = min(head, installed.next_height + _MAX_BLOCK_FILTER_CHANGES - 1)
        for height in range(installed.next_height, last + 1):
            block = self.ctx.ledger.block(height)
            for tx in () if block is None else block.transactions:
                if tx.hash in installed.reported:
                    installed.reported.discard(tx.hash)
                else:
                    hashes.append(fmt.data(tx.hash))
        installed.next_height = last + 1
        for tx in self.ctx.mempool.pending():
            if tx.hash not in installed.reported:
                installed.reported.add(tx.hash)
                hashes.append(fmt.data(tx.hash))
        # Bounded by the pool: what left it without a block (expired, dropped) is forgotten.
        if len(installed.reported) > 2 * self.ctx.config.mempool_size:
            installed.reported &= {tx.hash for tx in self.ctx.mempool.pending()}
        return hashes

    async def eth_get_filter_changes(self, params: list[Any]) -> list[Any]:
        """What a filter matched since its last poll."""
        (id_raw,) = p.positional(params, 1, 1, "eth_getFilterChanges")
        _, installed = self._get_filter(id_raw)
        head = self.ctx.ledger.head.height
        if installed.kind == "pending":
            return self._pending_changes(installed, head)
        if installed.kind == "blocks":
            last = min(head, installed.next_height + _MAX_BLOCK_FILTER_CHANGES - 1)
            hashes = []
            for height in range(installed.next_height, last + 1):
                block = self.ctx.ledger.block(height)
                if block is not None:
                    hashes.append(fmt.data(block.hash))
            installed.next_height = last + 1
            return hashes
        assert installed.query is not None
        last = head if installed.open_ended else min(head, installed.query.to_height)
        if installed.next_height > last:
            return []
        query = replace(installed.query, from_height=installed.next_height, to_height=last)
        logs = await self.ctx.off_loop(self._run_log_query, query)
        installed.next_height = last + 1
        return logs

    async def eth_get_filter_logs(self, params: list[Any]) -> list[dict[str, Any]]:
        """Every log a log filter matches over its whole range."""
        (id_raw,) = p.positional(params, 1, 1, "eth_getFilterLogs")
        _, installed = self._get_filter(id_raw)
        if installed.query is None:
            raise InvalidParams("filterId: not a log filter")
        query = installed.query
        if installed.open_ended:
            query = replace(query, to_height=self.ctx.ledger.head.height)
        return await self.ctx.off_loop(self._run_log_query, query)

    async def eth_uninstall_filter(self, params: list[Any]) -> bool:
        """Remove a filter; false if there was none."""
        (id_raw,) = p.positional(params, 1, 1, "eth_uninstallFilter")
        if not isinstance(id_raw, str):
            raise InvalidParams("filterId: expected a filter id string")
        return self._filters.pop(id_raw, None) is not None
