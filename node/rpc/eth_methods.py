"""The ``web3_*``, ``net_*`` and plain ``eth_*`` handlers: chain facts, fees, blocks,
transactions, receipts, transaction admission and single-value state reads.

``eth_getTransactionCount`` answers the number of transactions the address has committed as
of the selected block (the EVM account nonce, which execution increments once per
transaction), plus, for ``pending``, its transactions waiting in the pool; the ledger's
replay protection does not use it. Transaction objects: :mod:`node.rpc.tx_shape`; fees:
:mod:`node.rpc.fees`.

The ``pending`` tag names the block being built: ``eth_getBlockByNumber("pending")`` is the
next height with the pool's transactions (no hash yet), ``eth_getBlockTransactionCountByNumber``
counts the pool, ``eth_getTransactionCount`` adds the pool. State reads (``eth_call``,
``eth_getBalance``, code, storage) at ``pending`` answer from the head's state: the pool is
not executed ahead of its block.
"""

from __future__ import annotations

import platform
import time
from typing import Any

from chain.errors import ValidationError
from chain.primitives import ZERO_HASH, Address, Hash32
from chain.types import Block, Header
from node.rpc import format as fmt
from node.rpc import params as p
from node.rpc.context import RpcContext
from node.rpc.errors import InvalidParams, refusal_error
from node.rpc.fees import BASE_FEE_PER_GAS, BLOB_BASE_FEE_PER_GAS, PRIORITY_FEE_PER_GAS
from node.rpc.receipt_index import ReceiptIndex
from node.rpc.tx_shape import TransactionShaper

CLIENT_VERSION = f"lianxin/0.1.0/python{platform.python_version()}"


class EthMethods:
    """Chain, block, transaction and state-read handlers."""

    def __init__(self, ctx: RpcContext) -> None:
        self.ctx = ctx
        self.shaper = TransactionShaper(ctx.ledger, ctx.mempool)
        self.receipts = ReceiptIndex(ctx.ledger)
        self._checking = 0
        """Admissions being checked on the reader pool right now."""

    # -- web3 / net / chain --------------------------------------------------------------

    async def web3_client_version(self, params: list[Any]) -> str:
        """The node software and version."""
        p.positional(params, 0, 0, "web3_clientVersion")
        return CLIENT_VERSION

    async def net_version(self, params: list[Any]) -> str:
        """The chain id as a decimal string."""
        p.positional(params, 0, 0, "net_version")
        return str(self.ctx.ledger.chain_id)

    async def net_listening(self, params: list[Any]) -> bool:
        """Always true while the server answers."""
        p.positional(params, 0, 0, "net_listening")
        return True

    async def net_peer_count(self, params: list[Any]) -> str:
        """Number of connected validator peers."""
        p.positional(params, 0, 0, "net_peerCount")
        return fmt.quantity(len(self.ctx.peers()))

    async def eth_chain_id(self, params: list[Any]) -> str:
        """The chain id."""
        p.positional(params, 0, 0, "eth_chainId")
        return fmt.quantity(self.ctx.ledger.chain_id)

    async def eth_block_number(self, params: list[Any]) -> str:
        """Height of the head block."""
        p.positional(params, 0, 0, "eth_blockNumber")
        return fmt.quantity(self.ctx.ledger.head.height)

    async def eth_syncing(self, params: list[Any]) -> bool:
        """A single node is never syncing."""
        p.positional(params, 0, 0, "eth_syncing")
        return False

    async def eth_gas_price(self, params: list[Any]) -> str:
        """The nominal gas price (see :mod:`node.rpc.fees`: nothing is charged)."""
        p.positional(params, 0, 0, "eth_gasPrice")
        return fmt.quantity(BASE_FEE_PER_GAS + PRIORITY_FEE_PER_GAS)

    async def eth_blob_base_fee(self, params: list[Any]) -> str:
        """The nominal blob base fee (no transaction carries blobs, see :mod:`node.rpc.fees`)."""
        p.positional(params, 0, 0, "eth_blobBaseFee")
        return fmt.quantity(BLOB_BASE_FEE_PER_GAS)

    async def eth_max_priority_fee_per_gas(self, params: list[Any]) -> str:
        """The suggested tip: none."""
        p.positional(params, 0, 0, "eth_maxPriorityFeePerGas")
        return fmt.quantity(PRIORITY_FEE_PER_GAS)

    async def eth_fee_history(self, params: list[Any]) -> dict[str, Any]:
        """The nominal base fee, the share of the block gas limit used, and zero rewards,
        for up to 1024 blocks ending at ``newestBlock``."""
        count_raw, newest_raw, percentiles = p.positional(params, 2, 3, "eth_feeHistory")
        if isinstance(count_raw, int) and not isinstance(count_raw, bool):
            count = count_raw
        else:
            count = p.quantity(count_raw, "blockCount", p.MAX_UINT64)
        if count < 0:
            raise InvalidParams("blockCount: expected a non-negative number")
        count = min(count, 1024)
        newest = self.ctx.state_header(newest_raw, "newestBlock").height
        count = min(count, newest + 1)
        if percentiles is None:
            percentiles = []
        if (
            not isinstance(percentiles, list)
            or len(percentiles) > 100
            or not all(
                isinstance(x, int | float) and not isinstance(x, bool) and 0 <= x <= 100
                for x in percentiles
            )
        ):
            raise InvalidParams("rewardPercentiles: expected at most 100 numbers within 0..100")
        genesis = self.ctx.ledger.genesis
        ratios = []
        for height in range(newest - count + 1, newest + 1):
            found = self.ctx.ledger.block_and_receipts(height)
            used = 0 if found is None else sum(r.gas_used for r in found[1])
            gas_limit = genesis.block_gas_limit_at(height)
            ratios.append(used / gas_limit if gas_limit else 0.0)
        result: dict[str, Any] = {
            "oldestBlock": fmt.quantity(newest - count + 1),
            "baseFeePerGas": [fmt.quantity(BASE_FEE_PER_GAS)] * (count + 1),
            "gasUsedRatio": ratios,
        }
        if percentiles:
            tip = fmt.quantity(PRIORITY_FEE_PER_GAS)
            result["reward"] = [[tip] * len(percentiles) for _ in range(count)]
        return result

    # -- blocks and transactions ---------------------------------------------------------

    def _block_json(self, header: Header | None, full: bool) -> dict[str, Any] | None:
        if header is None:
            return None
        found = self.ctx.ledger.block_and_receipts(header.height)
        if found is None:
            return None
        block, receipts = found
        return fmt.block_json(
            block,
            receipts,
            gas_limit=self.ctx.ledger.genesis.block_gas_limit_at(header.height),
            full_transactions=self.shaper.block_transactions(block) if full else None,
        )

    def _pending_block_json(self, full: bool) -> dict[str, Any]:
        """The block being built: the next height, holding the pool's transactions."""
        head = self.ctx.ledger.head
        pending = list(self.ctx.mempool.pending())
        result = fmt.header_json(
            head,
            size=0,
            gas_used=0,
            gas_limit=self.ctx.ledger.genesis.block_gas_limit_at(head.height + 1),
        )
        result.update(
            {
                "number": fmt.quantity(head.height + 1),
                "hash": None,
                "parentHash": fmt.data(head.hash),
                "nonce": None,
                "miner": fmt.data(bytes(20)),
                "transactionsRoot": fmt.data(ZERO_HASH),
                "receiptsRoot": fmt.data(ZERO_HASH),
                "timestamp": fmt.quantity(max(time.time_ns() // 10**9, head.timestamp_ms // 1000)),
                "timestampMs": fmt.quantity(max(time.time_ns() // 10**6, head.timestamp_ms)),
                "lastCommitHash": None,
            }
        )
        result["transactions"] = (
            self.shaper.pending_block_transactions(pending)
            if full
            else [fmt.data(tx.hash) for tx in pending]
        )
        return result

    async def eth_get_block_by_number(self, params: list[Any]) -> dict[str, Any] | None:
        """The block at a number or tag, with full transactions or their hashes."""
        block_raw, full_raw = p.positional(params, 1, 2, "eth_getBlockByNumber")
        selector = p.block_selector(block_raw, "block")
        if selector.block_hash is not None:
            raise InvalidParams("block: expected a number or tag")
        full = p.boolean(full_raw, "full")
        if selector.tag == "pending":
            return self._pending_block_json(full)
        return self._block_json(self.ctx.header(selector), full)

    async def eth_get_block_by_hash(self, params: list[Any]) -> dict[str, Any] | None:
        """The block with a hash, with full transactions or their hashes."""
        hash_raw, full_raw = p.positional(params, 1, 2, "eth_getBlockByHash")
        selector = p.BlockSelector(block_hash=p.hash32(hash_raw, "blockHash"))
        return self._block_json(self.ctx.header(selector), p.boolean(full_raw, "full"))

    async def eth_get_block_tx_count_by_number(self, params: list[Any]) -> str | None:
        """Number of transactions in the block at a number or tag."""
        (block_raw,) = p.positional(params, 1, 1, "eth_getBlockTransactionCountByNumber")
        selector = p.block_selector(block_raw, "block")
        if selector.tag == "pending":
            return fmt.quantity(self.ctx.mempool.pending_count)
        header = self.ctx.header(selector)
        block = None if header is None else self.ctx.ledger.block(header.height)
        return None if block is None else fmt.quantity(len(block.transactions))

    async def eth_get_block_tx_count_by_hash(self, params: list[Any]) -> str | None:
        """Number of transactions in the block with a hash."""
        (hash_raw,) = p.positional(params, 1, 1, "eth_getBlockTransactionCountByHash")
        header = self.ctx.header(p.BlockSelector(block_hash=p.hash32(hash_raw, "blockHash")))
        block = None if header is None else self.ctx.ledger.block(header.height)
        return None if block is None else fmt.quantity(len(block.transactions))

    async def eth_get_uncle_count_by_block_hash(self, params: list[Any]) -> str | None:
        """No block has uncles: 0 for a known block, ``null`` for an unknown one."""
        (hash_raw,) = p.positional(params, 1, 1, "eth_getUncleCountByBlockHash")
        header = self.ctx.header(p.BlockSelector(block_hash=p.hash32(hash_raw, "blockHash")))
        return None if header is None else "0x0"

    async def eth_get_uncle_count_by_block_number(self, params: list[Any]) -> str | None:
        """No block has uncles: 0 for a known block or ``pending``, ``null`` for an unknown
        one."""
        (block_raw,) = p.positional(params, 1, 1, "eth_getUncleCountByBlockNumber")
        selector = p.block_selector(block_raw, "block")
        if selector.tag == "pending":
            return "0x0"
        return None if self.ctx.header(selector) is None else "0x0"

    async def eth_get_transaction_by_hash(self, params: list[Any]) -> dict[str, Any] | None:
        """A committed or pending transaction, or ``null``."""
        (hash_raw,) = p.positional(params, 1, 1, "eth_getTransactionByHash")
        tx_hash = p.hash32(hash_raw, "txHash")
        found = self.ctx.ledger.lookup_transaction(tx_hash)
        if found is not None:
            return self.shaper.committed(found.block, found.index)
        pending = self.ctx.mempool.get(tx_hash)
        return None if pending is None else self.shaper.pending(pending)

    async def eth_get_raw_transaction_by_hash(self, params: list[Any]) -> str | None:
        """The canonical encoding of a committed or pending transaction, or ``null``."""
        (hash_raw,) = p.positional(params, 1, 1, "eth_getRawTransactionByHash")
        tx_hash = p.hash32(hash_raw, "txHash")
        found = self.ctx.ledger.lookup_transaction(tx_hash)
        tx = found.tx if found is not None else self.ctx.mempool.get(tx_hash)
        return None if tx is None else fmt.data(tx.encode())

    def _block_at(self, header: Header | None) -> Block | None:
        return None if header is None else self.ctx.ledger.block(header.height)

    def _indexed(self, block: Block | None, index_raw: Any) -> dict[str, Any] | None:
        index = p.quantity(index_raw, "index", p.MAX_UINT64)
        if block is None or index >= len(block.transactions):
            return None
        return self.shaper.committed(block, index)

    def _raw_at(self, selector: p.BlockSelector, index_raw: Any) -> str | None:
        """The canonical encoding of the transaction at a position of the selected block
        (``pending``: the pool, in order), or ``null``."""
        index = p.quantity(index_raw, "index", p.MAX_UINT64)
        if selector.tag == "pending":
            txs = list(self.ctx.mempool.pending())
        else:
            block = self._block_at(self.ctx.header(selector))
            txs = [] if block is None else list(block.transactions)
        return fmt.data(txs[index].encode()) if index < len(txs) else None

    async def eth_get_raw_tx_by_block_hash_and_index(self, params: list[Any]) -> str | None:
        """The canonical encoding of the transaction at a position of the block with a hash,
        or ``null``."""
        hash_raw, index_raw = p.positional(params, 2, 2, "eth_getRawTransactionByBlockHashAndIndex")
        selector = p.BlockSelector(block_hash=p.hash32(hash_raw, "blockHash"))
        return self._raw_at(selector, index_raw)

    async def eth_get_raw_tx_by_block_number_and_index(self, params: list[Any]) -> str | None:
        """The canonical encoding of the transaction at a position of the block at a number
        or tag, or ``null``."""
        block_raw, index_raw = p.positional(
            params, 2, 2, "eth_getRawTransactionByBlockNumberAndIndex"
        )
        return self._raw_at(p.block_selector(block_raw, "block"), index_raw)

    async def eth_get_tx_by_block_hash_and_index(self, params: list[Any]) -> dict[str, Any] | None:
        """The transaction at a position of the block with a hash, or ``null``."""
        hash_raw, index_raw = p.positional(params, 2, 2, "eth_getTransactionByBlockHashAndIndex")
        selector = p.BlockSelector(block_hash=p.hash32(hash_raw, "blockHash"))
        return self._indexed(self._block_at(self.ctx.header(selector)), index_raw)

    async def eth_get_tx_by_block_number_and_index(
        self, params: list[Any]
    ) -> dict[str, Any] | None:
        """The transaction at a position of the block at a number or tag, or ``null``."""
        block_raw, index_raw = p.positional(params, 2, 2, "eth_getTransactionByBlockNumberAndIndex")
        selector = p.block_selector(block_raw, "block")
        if selector.tag == "pending":
            index = p.quantity(index_raw, "index", p.MAX_UINT64)
            pending = list(self.ctx.mempool.pending())
            if index >= len(pending):
                return None
            return self.shaper.pending_block_transactions(pending[: index + 1])[index]
        return self._indexed(self._block_at(self.ctx.header(selector)), index_raw)

    async def eth_get_block_receipts(self, params: list[Any]) -> list[dict[str, Any]] | None:
        """Every receipt of a block (by number, tag or hash), or ``null`` if there is none."""
        (block_raw,) = p.positional(params, 1, 1, "eth_getBlockReceipts")
        selector = p.block_selector(block_raw, "block")
        if selector.tag == "pending":
            return None
        block = self._block_at(self.ctx.header(selector))
        if block is None:
            return None
        receipts = []
        for index, tx in enumerate(block.transactions):
            receipt = self._receipt_json(tx.hash, block.header.height, index)
            assert receipt is not None
            receipts.append(receipt)
        return receipts

    def _receipt_json(
        self, tx_hash: Hash32, height: int | None = None, index: int | None = None
    ) -> dict[str, Any] | None:
        found = self.receipts.lookup(tx_hash, height, index)
        if found is None:
            return None
        return fmt.receipt_json(found, self.receipts.cumulative_gas(found))

    async def eth_get_transaction_receipt(self, params: list[Any]) -> dict[str, Any] | None:
        """The receipt of a committed transaction. For a transaction still in the mempool the
        answer waits up to ``receipt_wait_ms`` for its block, then is ``null``."""
        (hash_raw,) = p.positional(params, 1, 1, "eth_getTransactionReceipt")
        tx_hash = p.hash32(hash_raw, "txHash")
        wait_ms = self.ctx.config.receipt_wait_ms
        # A pooled transaction is not answered before its block is durable and the pool is
        # told (moments after the head moves): no lookup by hash before the wait.
        outcome = await self.ctx.mempool.wait(tx_hash, wait_ms / 1000) if wait_ms else None
        if outcome is None:
            # Not pooled, or not settled in time (or committed by a path that did not tell
            # the pool): the store knows.
            return self._receipt_json(tx_hash)
        return self._receipt_json(tx_hash, outcome.height, outcome.index)

    async def eth_send_raw_transaction(self, params: list[Any]) -> str:
        """Admit a signed transaction (hex of its canonical encoding) into the mempool and
        return its SM3 hash; a refusal answers with its own error code (see errors.py).

        When the pool is idle (nothing pending, no other admission being checked) the checks
        run on the event loop: the SM2 verification (under a millisecond, OpenSSL releasing
        the GIL meanwhile) costs less than handing it to a reader thread and back, which is
        what a client sending one transaction at a time waits for. Under load they run on
        the reader pool, where several verify in parallel."""
        (raw_hex,) = p.positional(params, 1, 1, "eth_sendRawTransaction")
        raw = p.data(raw_hex, "transaction", self.ctx.config.max_request_bytes)
        mempool = self.ctx.mempool
        try:
            if self._checking or mempool.pending_count:
                self._checking += 1
                try:
                    tx = await self.ctx.off_loop(mempool.check, raw)
                finally:
                    self._checking -= 1
            else:
                tx = mempool.check(raw)
            mempool.add(tx)
        except ValidationError as exc:
            error = refusal_error(exc)
            if error is None:
                raise
            raise error from exc
        return fmt.data(tx.hash)

    async def eth_get_code(self, params: list[Any]) -> str:
        """The runtime code at an address."""
        address_raw, block_raw = p.positional(params, 1, 2, "eth_getCode")
        address = p.address(address_raw, "address")
        header = self.ctx.state_header(block_raw, "block")
        return fmt.data(self.ctx.ledger.code(header, address))

    async def eth_get_storage_at(self, params: list[Any]) -> str:
        """One 32-byte storage slot of an address."""
        address_raw, slot_raw, block_raw = p.positional(params, 2, 3, "eth_getStorageAt")
        address = p.address(address_raw, "address")
        slot = p.quantity(slot_raw, "slot")
        header = self.ctx.state_header(block_raw, "block")
        return fmt.data(self.ctx.ledger.storage(header, address, slot).to_bytes(32, "big"))

    async def eth_get_balance(self, params: list[Any]) -> str:
        """The native balance of an address."""
        address_raw, block_raw = p.positional(params, 1, 2, "eth_getBalance")
        address = p.address(address_raw, "address")
        header = self.ctx.state_header(block_raw, "block")
        return fmt.quantity(self.ctx.ledger.account(header, address).balance)

    async def eth_get_transaction_count(self, params: list[Any]) -> str:
        """Number of transactions the address committed up to the block (see module doc)."""
        address_raw, block_raw = p.positional(params, 1, 2, "eth_getTransactionCount")
        address = p.address(address_raw, "address")
        header = self.ctx.state_header(block_raw, "block")
        count = self.ctx.ledger.account(header, address).nonce
        if p.block_selector(block_raw, "block").tag == "pending":
            count += self.shaper.pending_count(Address(address))
        return fmt.quantity(count)
