"""The ``web3_*``, ``net_*`` and plain ``eth_*`` handlers: chain facts, blocks, transactions,
receipts, transaction admission and single-value state reads.

``eth_getTransactionCount`` answers the number of transactions the address has committed as
of the selected block (the EVM account nonce, which execution increments once per
transaction); the ledger's replay protection does not use it.
"""

from __future__ import annotations

import asyncio
import platform
from typing import Any

from chain.errors import ValidationError
from chain.primitives import Hash32
from chain.types import Header
from node.rpc import format as fmt
from node.rpc import params as p
from node.rpc.context import RpcContext
from node.rpc.errors import InvalidParams, refusal_error

CLIENT_VERSION = f"lianxin/0.1.0/python{platform.python_version()}"


class EthMethods:
    """Chain, block, transaction and state-read handlers."""

    def __init__(self, ctx: RpcContext) -> None:
        self.ctx = ctx

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
        newest = self.ctx.state_header(newest_raw, "newestBlock").height
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
        found = self.ctx.ledger.block_and_receipts(header.height)
        if found is None:
            return None
        return fmt.block_json(
            found[0], found[1], full=full, gas_limit=self.ctx.ledger.genesis.block_gas_limit
        )

    async def eth_get_block_by_number(self, params: list[Any]) -> dict[str, Any] | None:
        """The block at a number or tag, with full transactions or their hashes."""
        block_raw, full_raw = p.positional(params, 1, 2, "eth_getBlockByNumber")
        selector = p.block_selector(block_raw, "block")
        if selector.block_hash is not None:
            raise InvalidParams("block: expected a number or tag")
        return self._block_json(self.ctx.header(selector), p.boolean(full_raw, "full"))

    async def eth_get_block_by_hash(self, params: list[Any]) -> dict[str, Any] | None:
        """The block with a hash, with full transactions or their hashes."""
        hash_raw, full_raw = p.positional(params, 1, 2, "eth_getBlockByHash")
        selector = p.BlockSelector(block_hash=p.hash32(hash_raw, "blockHash"))
        return self._block_json(self.ctx.header(selector), p.boolean(full_raw, "full"))

    async def eth_get_block_tx_count_by_number(self, params: list[Any]) -> str | None:
        """Number of transactions in the block at a number or tag."""
        (block_raw,) = p.positional(params, 1, 1, "eth_getBlockTransactionCountByNumber")
        header = self.ctx.header(p.block_selector(block_raw, "block"))
        block = None if header is None else self.ctx.ledger.block(header.height)
        return None if block is None else fmt.quantity(len(block.transactions))

    async def eth_get_block_tx_count_by_hash(self, params: list[Any]) -> str | None:
        """Number of transactions in the block with a hash."""
        (hash_raw,) = p.positional(params, 1, 1, "eth_getBlockTransactionCountByHash")
        header = self.ctx.header(p.BlockSelector(block_hash=p.hash32(hash_raw, "blockHash")))
        block = None if header is None else self.ctx.ledger.block(header.height)
        return None if block is None else fmt.quantity(len(block.transactions))

    async def eth_get_transaction_by_hash(self, params: list[Any]) -> dict[str, Any] | None:
        """A committed or pending transaction, or ``null``."""
        (hash_raw,) = p.positional(params, 1, 1, "eth_getTransactionByHash")
        tx_hash = p.hash32(hash_raw, "txHash")
        found = self.ctx.ledger.lookup_transaction(tx_hash)
        if found is not None:
            return fmt.transaction_json(found.tx, block=found.block, index=found.index)
        pending = self.ctx.mempool.get(tx_hash)
        return None if pending is None else fmt.transaction_json(pending)

    def _receipt_json(self, tx_hash: Hash32) -> dict[str, Any] | None:
        found = self.ctx.ledger.lookup_transaction(tx_hash)
        if found is None:
            return None
        receipts = self.ctx.ledger.block_and_receipts(found.block.header.height)
        assert receipts is not None
        cumulative = sum(r.gas_used for r in receipts[1][: found.index + 1])
        return fmt.receipt_json(found, cumulative)

    async def eth_get_transaction_receipt(self, params: list[Any]) -> dict[str, Any] | None:
        """The receipt of a committed transaction. For a transaction still in the mempool the
        answer waits up to ``receipt_wait_ms`` for its block, then is ``null``."""
        (hash_raw,) = p.positional(params, 1, 1, "eth_getTransactionReceipt")
        tx_hash = p.hash32(hash_raw, "txHash")
        receipt = self._receipt_json(tx_hash)
        if receipt is not None or not self.ctx.config.receipt_wait_ms:
            return receipt
        waiter = self.ctx.mempool.waiter(tx_hash)
        if waiter is None:
            # Committed between the lookup and now, or unknown.
            return self._receipt_json(tx_hash)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), self.ctx.config.receipt_wait_ms / 1000)
        except TimeoutError:
            self.ctx.mempool.forget_waiter(tx_hash, waiter)
            return None
        return self._receipt_json(tx_hash)

    async def eth_send_raw_transaction(self, params: list[Any]) -> str:
        """Admit a signed transaction (hex of its canonical encoding) into the mempool and
        return its SM3 hash; a refusal answers with its own error code (see errors.py)."""
        (raw_hex,) = p.positional(params, 1, 1, "eth_sendRawTransaction")
        raw = p.data(raw_hex, "transaction", self.ctx.config.max_request_bytes)
        try:
            tx = await self.ctx.off_loop(self.ctx.mempool.check, raw)
            self.ctx.mempool.add(tx)
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
        return fmt.quantity(self.ctx.ledger.account(header, address).nonce)
