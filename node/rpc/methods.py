"""The JSON-RPC methods: one table from method name to handler.

Handlers take the positional ``params`` list and return a JSON-ready value or raise
:class:`~node.rpc.errors.RpcError`. Work that may take long (EVM calls, gas estimation, log
queries, transaction admission with its SM2 verification) runs on the reader thread pool so
that the event loop keeps serving; quick indexed reads run inline.

``eth_getTransactionCount`` answers the number of transactions the address has committed as
of the selected block (the EVM account nonce, which execution increments once per
transaction); the ledger's replay protection does not use it.
"""

from __future__ import annotations

import asyncio
import itertools
import platform
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from chain.errors import ExecutionError, ValidationError
from chain.execution import CallReverted, CallState
from chain.primitives import Address, Hash32
from chain.types import Header
from node.config import NodeConfig
from node.ledger import Ledger
from node.log_index import LogQuery
from node.mempool import Mempool
from node.rpc import format as fmt
from node.rpc import params as p
from node.rpc.errors import (
    ErrorCode,
    InvalidParams,
    LimitExceeded,
    NotFound,
    RpcError,
    refusal_error,
)

CLIENT_VERSION = f"lianxin/0.1.0/python{platform.python_version()}"

Handler = Callable[[list[Any]], Awaitable[Any]]
_T = TypeVar("_T")

_MAX_BLOCK_FILTER_CHANGES = 10_000


@dataclass
class _Filter:
    """An installed filter: ``next_height`` is the first block not yet reported."""

    kind: str
    next_height: int
    query: LogQuery | None = None
    open_ended: bool = True
    last_poll: float = field(default_factory=time.monotonic)


class RpcApi:
    """The handlers of every method, over one ledger and mempool."""

    def __init__(
        self,
        ledger: Ledger,
        mempool: Mempool,
        config: NodeConfig,
        readers: Executor,
        *,
        peers: Callable[[], list[dict[str, Any]]] = list,
    ) -> None:
        """``readers`` runs the slow handlers off the event loop."""
        self.ledger = ledger
        self.mempool = mempool
        self.config = config
        self._readers = readers
        self._peers = peers
        self._filters: dict[str, _Filter] = {}
        self._filter_ids = itertools.count(1)
        # Each reader thread keeps the state of the block its last call ran on (see
        # _call_state): consecutive calls at the same head reuse its decoded trie reads.
        self._call_states = threading.local()
        self.table: dict[str, Handler] = {
            "web3_clientVersion": self.web3_client_version,
            "net_version": self.net_version,
            "net_listening": self.net_listening,
            "net_peerCount": self.net_peer_count,
            "eth_chainId": self.eth_chain_id,
            "eth_blockNumber": self.eth_block_number,
            "eth_syncing": self.eth_syncing,
            "eth_accounts": self.eth_accounts,
            "eth_gasPrice": self.eth_gas_price,
            "eth_maxPriorityFeePerGas": self.eth_gas_price,
            "eth_feeHistory": self.eth_fee_history,
            "eth_getBlockByNumber": self.eth_get_block_by_number,
            "eth_getBlockByHash": self.eth_get_block_by_hash,
            "eth_getBlockTransactionCountByNumber": self.eth_get_block_tx_count_by_number,
            "eth_getBlockTransactionCountByHash": self.eth_get_block_tx_count_by_hash,
            "eth_getTransactionByHash": self.eth_get_transaction_by_hash,
            "eth_getTransactionReceipt": self.eth_get_transaction_receipt,
            "eth_sendRawTransaction": self.eth_send_raw_transaction,
            "eth_call": self.eth_call,
            "eth_estimateGas": self.eth_estimate_gas,
            "eth_getCode": self.eth_get_code,
            "eth_getStorageAt": self.eth_get_storage_at,
            "eth_getBalance": self.eth_get_balance,
            "eth_getTransactionCount": self.eth_get_transaction_count,
            "eth_getLogs": self.eth_get_logs,
            "eth_newFilter": self.eth_new_filter,
            "eth_newBlockFilter": self.eth_new_block_filter,
            "eth_getFilterChanges": self.eth_get_filter_changes,
            "eth_getFilterLogs": self.eth_get_filter_logs,
            "eth_uninstallFilter": self.eth_uninstall_filter,
            "lianxin_getTransactionProof": self.lianxin_get_transaction_proof,
            "lianxin_getReceiptProof": self.lianxin_get_receipt_proof,
            "lianxin_getBlockHeader": self.lianxin_get_block_header,
            "lianxin_getValidators": self.lianxin_get_validators,
            "lianxin_getConsensusStatus": self.lianxin_get_consensus_status,
            "lianxin_getPeers": self.lianxin_get_peers,
        }

    async def _off_loop(self, function: Callable[..., _T], *args: Any) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._readers, function, *args)

    # -- block lookups -------------------------------------------------------------------------

    def _header(self, selector: p.BlockSelector) -> Header | None:
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

    def _state_header(self, value: Any, field_name: str) -> Header:
        header = self._header(p.block_selector(value, field_name))
        if header is None:
            raise NotFound("block not found", {"block": value})
        return header

    def _height(self, value: Any, field_name: str, default: str) -> int:
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

    # -- web3 / net / chain --------------------------------------------------------------

    async def web3_client_version(self, params: list[Any]) -> str:
        """The node software and version."""
        p.positional(params, 0, 0, "web3_clientVersion")
        return CLIENT_VERSION

    async def net_version(self, params: list[Any]) -> str:
        """The chain id as a decimal string."""
        p.positional(params, 0, 0, "net_version")
        return str(self.ledger.chain_id)

    async def net_listening(self, params: list[Any]) -> bool:
        """Always true while the server answers."""
        p.positional(params, 0, 0, "net_listening")
        return True

    async def net_peer_count(self, params: list[Any]) -> str:
        """Number of connected validator peers."""
        p.positional(params, 0, 0, "net_peerCount")
        return fmt.quantity(len(self._peers()))

    async def eth_chain_id(self, params: list[Any]) -> str:
        """The chain id."""
        p.positional(params, 0, 0, "eth_chainId")
        return fmt.quantity(self.ledger.chain_id)

    async def eth_block_number(self, params: list[Any]) -> str:
        """Height of the head block."""
        p.positional(params, 0, 0, "eth_blockNumber")
        return fmt.quantity(self.ledger.head.height)

    async def eth_syncing(self, params: list[Any]) -> bool:
        """A single node is never syncing."""
        p.positional(params, 0, 0, "eth_syncing")
        return False

    async def eth_accounts(self, params: list[Any]) -> list[str]:
        """The node holds no user accounts."""
        p.positional(params, 0, 0, "eth_accounts")
        return []

    async def eth_gas_price(self, params: list[Any]) -> str:
        """Gas costs nothing on this chain."""
        p.positional(params, 0, 0, "eth_gasPrice")
        return "0x0"

    async def eth_fee_history(self, params: list[Any]) -> dict[str, Any]:
        """Zero fees for the requested blocks."""
        count_raw, newest_raw, percentiles = p.positional(params, 2, 3, "eth_feeHistory")
        if isinstance(count_raw, int) and not isinstance(count_raw, bool):
            count = count_raw
        else:
            count = p.quantity(count_raw, "blockCount", p.MAX_UINT64)
        count = min(count, 1024)
        newest = self._state_header(newest_raw, "newestBlock").height
        count = min(count, newest + 1)
        if percentiles is None:
            percentiles = []
        if not isinstance(percentiles, list) or len(percentiles) > 100:
            raise InvalidParams("rewardPercentiles: expected a list of at most 100 numbers")
        result: dict[str, Any] = {
            "oldestBlock": fmt.quantity(newest - count + 1),
            "baseFeePerGas": ["0x0"] * (count + 1),
            "gasUsedRatio": [0.0] * count,
        }
        if percentiles:
            result["reward"] = [["0x0"] * len(percentiles) for _ in range(count)]
        return result

    # -- blocks and transactions ---------------------------------------------------------

    def _block_json(self, header: Header | None, full: bool) -> dict[str, Any] | None:
        if header is None:
            return None
        found = self.ledger.block_and_receipts(header.height)
        if found is None:
            return None
        return fmt.block_json(
            found[0], found[1], full=full, gas_limit=self.ledger.genesis.block_gas_limit
        )

    async def eth_get_block_by_number(self, params: list[Any]) -> dict[str, Any] | None:
        """The block at a number or tag, with full transactions or their hashes."""
        block_raw, full_raw = p.positional(params, 1, 2, "eth_getBlockByNumber")
        selector = p.block_selector(block_raw, "block")
        if selector.block_hash is not None:
            raise InvalidParams("block: expected a number or tag")
        return self._block_json(self._header(selector), p.boolean(full_raw, "full"))

    async def eth_get_block_by_hash(self, params: list[Any]) -> dict[str, Any] | None:
        """The block with a hash, with full transactions or their hashes."""
        hash_raw, full_raw = p.positional(params, 1, 2, "eth_getBlockByHash")
        selector = p.BlockSelector(block_hash=p.hash32(hash_raw, "blockHash"))
        return self._block_json(self._header(selector), p.boolean(full_raw, "full"))

    async def eth_get_block_tx_count_by_number(self, params: list[Any]) -> str | None:
        """Number of transactions in the block at a number or tag."""
        (block_raw,) = p.positional(params, 1, 1, "eth_getBlockTransactionCountByNumber")
        header = self._header(p.block_selector(block_raw, "block"))
        block = None if header is None else self.ledger.block(header.height)
        return None if block is None else fmt.quantity(len(block.transactions))

    async def eth_get_block_tx_count_by_hash(self, params: list[Any]) -> str | None:
        """Number of transactions in the block with a hash."""
        (hash_raw,) = p.positional(params, 1, 1, "eth_getBlockTransactionCountByHash")
        header = self._header(p.BlockSelector(block_hash=p.hash32(hash_raw, "blockHash")))
        block = None if header is None else self.ledger.block(header.height)
        return None if block is None else fmt.quantity(len(block.transactions))

    async def eth_get_transaction_by_hash(self, params: list[Any]) -> dict[str, Any] | None:
        """A committed or pending transaction, or ``null``."""
        (hash_raw,) = p.positional(params, 1, 1, "eth_getTransactionByHash")
        tx_hash = p.hash32(hash_raw, "txHash")
        found = self.ledger.lookup_transaction(tx_hash)
        if found is not None:
            return fmt.transaction_json(found.tx, block=found.block, index=found.index)
        pending = self.mempool.get(tx_hash)
        return None if pending is None else fmt.transaction_json(pending)

    def _receipt_json(self, tx_hash: Hash32) -> dict[str, Any] | None:
        found = self.ledger.lookup_transaction(tx_hash)
        if found is None:
            return None
        receipts = self.ledger.block_and_receipts(found.block.header.height)
        assert receipts is not None
        cumulative = sum(r.gas_used for r in receipts[1][: found.index + 1])
        return fmt.receipt_json(found, cumulative)

    async def eth_get_transaction_receipt(self, params: list[Any]) -> dict[str, Any] | None:
        """The receipt of a committed transaction. For a transaction still in the mempool the
        answer waits up to ``receipt_wait_ms`` for its block, then is ``null``."""
        (hash_raw,) = p.positional(params, 1, 1, "eth_getTransactionReceipt")
        tx_hash = p.hash32(hash_raw, "txHash")
        receipt = self._receipt_json(tx_hash)
        if receipt is not None or not self.config.receipt_wait_ms:
            return receipt
        waiter = self.mempool.waiter(tx_hash)
        if waiter is None:
            # Committed between the lookup and now, or unknown.
            return self._receipt_json(tx_hash)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), self.config.receipt_wait_ms / 1000)
        except TimeoutError:
            self.mempool.forget_waiter(tx_hash, waiter)
            return None
        return self._receipt_json(tx_hash)

    async def eth_send_raw_transaction(self, params: list[Any]) -> str:
        """Admit a signed transaction (hex of its canonical encoding) into the mempool and
        return its SM3 hash; a refusal answers with its own error code (see errors.py)."""
        (raw_hex,) = p.positional(params, 1, 1, "eth_sendRawTransaction")
        raw = p.data(raw_hex, "transaction", self.config.max_request_bytes)
        try:
            tx = await self._off_loop(self.mempool.check, raw)
            self.mempool.add(tx)
        except ValidationError as exc:
            error = refusal_error(exc)
            if error is None:
                raise
            raise error from exc
        return fmt.data(tx.hash)

    # -- state ------------------------------------------------------------------------------

    def _call_args(self, value: Any) -> dict[str, Any]:
        call = p.optional_object(value, "transaction")
        unknown = set(call) - {
            "from",
            "to",
            "gas",
            "gasPrice",
            "maxFeePerGas",
            "maxPriorityFeePerGas",
            "value",
            "data",
            "input",
            "nonce",
            "chainId",
            "type",
            "accessList",
        }
        if unknown:
            raise InvalidParams(f"transaction: unknown fields {sorted(unknown)}")
        if "data" in call and "input" in call and call["data"] != call["input"]:
            raise InvalidParams("transaction: data and input differ")
        payload = call.get("input", call.get("data"))
        gas = self.config.gas_cap
        if call.get("gas") is not None:
            gas = min(p.quantity(call["gas"], "transaction.gas", p.MAX_UINT64), gas)
        return {
            "sender": (
                Address(bytes(20))
                if call.get("from") is None
                else p.address(call["from"], "transaction.from")
            ),
            "to": None if call.get("to") is None else p.address(call["to"], "transaction.to"),
            "data": b"" if payload is None else p.data(payload, "transaction.data", 1 << 20),
            "gas": gas,
            "value": 0 if call.get("value") is None else p.quantity(call["value"], "value"),
        }

    def _call_state(self, header: Header) -> CallState:
        """This thread's reusable state after ``header`` (CallState is not thread-safe)."""
        cached: tuple[Hash32, CallState] | None = getattr(self._call_states, "entry", None)
        if cached is not None and cached[0] == header.hash:
            return cached[1]
        state = CallState(
            self.ledger.store.state(), header.state_root, self.ledger.context_for(header)
        )
        self._call_states.entry = (header.hash, state)
        return state

    async def eth_call(self, params: list[Any]) -> str:
        """Execute a call against a block's state and return its output; a revert answers
        error 3 with the revert data."""
        call_raw, block_raw, overrides = p.positional(params, 1, 3, "eth_call")
        if overrides is not None:
            raise InvalidParams("state overrides are not supported")
        args = self._call_args(call_raw)
        header = self._state_header(block_raw, "block")
        try:
            result = await self._off_loop(lambda: self._call_state(header).call(**args))
        except ExecutionError as exc:
            raise InvalidParams(str(exc)) from exc
        if not result.success:
            raise RpcError(
                ErrorCode.EXECUTION_REVERTED, "execution reverted", fmt.data(result.output)
            )
        return fmt.data(result.output)

    async def eth_estimate_gas(self, params: list[Any]) -> str:
        """The smallest gas limit with which the call succeeds."""
        call_raw, block_raw = p.positional(params, 1, 2, "eth_estimateGas")
        args = self._call_args(call_raw)
        header = self._state_header(block_raw, "block")
        try:
            gas = await self._off_loop(lambda: self._call_state(header).estimate_gas(**args))
        except CallReverted as exc:
            raise RpcError(
                ErrorCode.EXECUTION_REVERTED, "execution reverted", fmt.data(exc.output)
            ) from exc
        except ExecutionError as exc:
            raise InvalidParams(str(exc)) from exc
        return fmt.quantity(gas)

    async def eth_get_code(self, params: list[Any]) -> str:
        """The runtime code at an address."""
        address_raw, block_raw = p.positional(params, 1, 2, "eth_getCode")
        address = p.address(address_raw, "address")
        header = self._state_header(block_raw, "block")
        return fmt.data(self.ledger.code(header, address))

    async def eth_get_storage_at(self, params: list[Any]) -> str:
        """One 32-byte storage slot of an address."""
        address_raw, slot_raw, block_raw = p.positional(params, 2, 3, "eth_getStorageAt")
        address = p.address(address_raw, "address")
        slot = p.quantity(slot_raw, "slot")
        header = self._state_header(block_raw, "block")
        return fmt.data(self.ledger.storage(header, address, slot).to_bytes(32, "big"))

    async def eth_get_balance(self, params: list[Any]) -> str:
        """The native balance of an address."""
        address_raw, block_raw = p.positional(params, 1, 2, "eth_getBalance")
        address = p.address(address_raw, "address")
        header = self._state_header(block_raw, "block")
        return fmt.quantity(self.ledger.account(header, address).balance)

    async def eth_get_transaction_count(self, params: list[Any]) -> str:
        """Number of transactions the address committed up to the block (see module doc)."""
        address_raw, block_raw = p.positional(params, 1, 2, "eth_getTransactionCount")
        address = p.address(address_raw, "address")
        header = self._state_header(block_raw, "block")
        return fmt.quantity(self.ledger.account(header, address).nonce)

    # -- logs and filters -------------------------------------------------------------------

    def _log_query(self, value: Any) -> tuple[LogQuery, bool]:
        """The query of a filter object, and whether its range follows the head."""
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
            height = self.ledger.height_of(block_hash)
            if height is None:
                raise NotFound("block not found", {"blockHash": criteria["blockHash"]})
            return LogQuery(height, height, addresses, topics), False
        from_height = self._height(criteria.get("fromBlock"), "filter.fromBlock", "latest")
        to_raw = criteria.get("toBlock")
        open_ended = to_raw is None or to_raw in ("latest", "pending", "safe", "finalized")
        to_height = self._height(to_raw, "filter.toBlock", "latest")
        return LogQuery(from_height, to_height, addresses, topics), open_ended

    def _run_log_query(self, query: LogQuery) -> list[dict[str, Any]]:
        last = min(query.to_height, self.ledger.head.height)
        if last - query.from_height + 1 > self.config.max_block_range:
            raise LimitExceeded(
                f"block range wider than {self.config.max_block_range} blocks",
                {"fromBlock": query.from_height, "toBlock": query.to_height},
            )
        limit = self.config.max_log_results
        too_many = LimitExceeded(f"query returns more than {limit} logs; narrow it")
        # Counting reads index keys only, so an oversized query is refused without building
        # the entries it selects.
        if self.ledger.store.count_logs(query, limit + 1) > limit:
            raise too_many
        try:
            entries = self.ledger.logs(query, limit)
        except OverflowError as exc:
            raise too_many from exc
        return [fmt.log_entry_json(entry) for entry in entries]

    async def eth_get_logs(self, params: list[Any]) -> list[dict[str, Any]]:
        """Logs matching a filter object (address, topics, fromBlock/toBlock or blockHash)."""
        (criteria,) = p.positional(params, 1, 1, "eth_getLogs")
        query, _ = self._log_query(criteria)
        return await self._off_loop(self._run_log_query, query)

    def _install(self, installed: _Filter) -> str:
        self._expire_filters()
        if len(self._filters) >= self.config.max_filters:
            raise LimitExceeded(f"more than {self.config.max_filters} filters installed")
        filter_id = fmt.quantity(next(self._filter_ids))
        self._filters[filter_id] = installed
        return filter_id

    def _expire_filters(self) -> None:
        deadline = time.monotonic() - self.config.filter_timeout_s
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
        query, open_ended = self._log_query(criteria)
        next_height = max(query.from_height, self.ledger.head.height + 1)
        return self._install(_Filter("logs", next_height, query, open_ended))

    async def eth_new_block_filter(self, params: list[Any]) -> str:
        """Install a filter reporting hashes of blocks committed after now."""
        p.positional(params, 0, 0, "eth_newBlockFilter")
        return self._install(_Filter("blocks", self.ledger.head.height + 1))

    async def eth_get_filter_changes(self, params: list[Any]) -> list[Any]:
        """What a filter matched since its last poll."""
        (id_raw,) = p.positional(params, 1, 1, "eth_getFilterChanges")
        _, installed = self._get_filter(id_raw)
        head = self.ledger.head.height
        if installed.kind == "blocks":
            last = min(head, installed.next_height + _MAX_BLOCK_FILTER_CHANGES - 1)
            hashes = []
            for height in range(installed.next_height, last + 1):
                block = self.ledger.block(height)
                if block is not None:
                    hashes.append(fmt.data(block.hash))
            installed.next_height = last + 1
            return hashes
        assert installed.query is not None
        last = head if installed.open_ended else min(head, installed.query.to_height)
        if installed.next_height > last:
            return []
        query = replace(installed.query, from_height=installed.next_height, to_height=last)
        logs = await self._off_loop(self._run_log_query, query)
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
            query = replace(query, to_height=self.ledger.head.height)
        return await self._off_loop(self._run_log_query, query)

    async def eth_uninstall_filter(self, params: list[Any]) -> bool:
        """Remove a filter; false if there was none."""
        (id_raw,) = p.positional(params, 1, 1, "eth_uninstallFilter")
        if not isinstance(id_raw, str):
            raise InvalidParams("filterId: expected a filter id string")
        return self._filters.pop(id_raw, None) is not None

    # -- lianxin_* ----------------------------------------------------------------------------

    async def lianxin_get_transaction_proof(self, params: list[Any]) -> dict[str, Any] | None:
        """A Merkle proof that a transaction hash is a leaf under its block's tx root."""
        (hash_raw,) = p.positional(params, 1, 1, "lianxin_getTransactionProof")
        found = self.ledger.transaction_proof(p.hash32(hash_raw, "txHash"))
        if found is None:
            return None
        lookup, proof = found
        header = lookup.block.header
        return {
            "txHash": fmt.data(lookup.tx.hash),
            "leaf": fmt.data(lookup.tx.hash),
            "root": fmt.data(header.tx_root),
            "blockHash": fmt.data(header.hash),
            "blockNumber": fmt.quantity(header.height),
            "proof": fmt.proof_json(proof),
            "header": fmt.ledger_header_json(header),
        }

    async def lianxin_get_receipt_proof(self, params: list[Any]) -> dict[str, Any] | None:
        """A Merkle proof that a receipt's canonical encoding is a leaf under its block's
        receipt root."""
        (hash_raw,) = p.positional(params, 1, 1, "lianxin_getReceiptProof")
        found = self.ledger.receipt_proof(p.hash32(hash_raw, "txHash"))
        if found is None:
            return None
        lookup, proof = found
        header = lookup.block.header
        return {
            "txHash": fmt.data(lookup.tx.hash),
            "leaf": fmt.data(lookup.receipt.encode()),
            "root": fmt.data(header.receipt_root),
            "blockHash": fmt.data(header.hash),
            "blockNumber": fmt.quantity(header.height),
            "proof": fmt.proof_json(proof),
            "header": fmt.ledger_header_json(header),
        }

    async def lianxin_get_block_header(self, params: list[Any]) -> dict[str, Any] | None:
        """The ledger header of a block (by tag, number or hash) and its commit certificate."""
        (block_raw,) = p.positional(params, 0, 1, "lianxin_getBlockHeader")
        if isinstance(block_raw, str) and len(block_raw) == 66:
            selector = p.BlockSelector(block_hash=p.hash32(block_raw, "block"))
        else:
            selector = p.block_selector(block_raw, "block")
        header = self._header(selector)
        if header is None:
            return None
        return {
            "header": fmt.ledger_header_json(header),
            "certificate": fmt.certificate_json(self.ledger.certificate(header.height)),
        }

    async def lianxin_get_validators(self, params: list[Any]) -> dict[str, Any]:
        """The validator set ruling a height (the optional parameter, a quantity; by default
        the next height), its hash and the height it rules from; validators of the genesis
        set carry their genesis name."""
        (height_raw,) = p.positional(params, 0, 1, "lianxin_getValidators")
        next_height = self.ledger.head.height + 1
        height = next_height if height_raw is None else p.quantity(height_raw, "height")
        if not 1 <= height <= next_height:
            raise InvalidParams(f"height must be within 1..{next_height}")
        ruling = await self._off_loop(self.ledger.validator_set, height)
        names = {v.address: v.name for v in self.ledger.genesis.validators}
        return {
            "height": fmt.quantity(height),
            "since": fmt.quantity(ruling.since),
            "governed": self.ledger.governed,
            "validatorSetHash": fmt.data(ruling.validators.hash()),
            "validators": [
                {
                    "name": names.get(v.address, ""),
                    "address": fmt.data(v.address),
                    "publicKey": fmt.data(v.public_key),
                    "power": fmt.quantity(v.power),
                }
                for v in ruling.validators.validators
            ],
        }

    async def lianxin_get_consensus_status(self, params: list[Any]) -> dict[str, Any]:
        """Where consensus stands: dev mode commits every block at round 0."""
        p.positional(params, 0, 0, "lianxin_getConsensusStatus")
        head = self.ledger.head
        validator = self.ledger.validator_address
        return {
            "mode": "dev",
            "height": fmt.quantity(head.height),
            "round": "0x0",
            "headHash": fmt.data(head.hash),
            "validator": None if validator is None else fmt.data(validator),
            "validatorSetHash": fmt.data(head.validator_set_hash),
            "pendingTransactions": fmt.quantity(len(self.mempool)),
        }

    async def lianxin_get_peers(self, params: list[Any]) -> list[dict[str, Any]]:
        """Connected validator peers (none in single-node mode)."""
        p.positional(params, 0, 0, "lianxin_getPeers")
        return self._peers()
