"""Ledger transactions in the shape Ethereum clients parse (ethers v6, web3.py).

A ledger transaction is not an Ethereum transaction: its replay protection is a random 32-byte
nonce with a ``block_limit``, and it is signed with SM2. Ethereum clients read a transaction
object as a legacy (type 0) one and check its fields' ranges, so each field keeps its Ethereum
meaning and range, and the ledger's own fields travel under their own names:

- ``hash`` is the ledger's SM3 transaction hash, the key of every lookup. Clients take it as
  given (no client recomputes it from a transaction object).
- ``nonce`` is the sender's EVM nonce before the transaction: the number of transactions the
  account had committed before it, which execution counts and ``eth_getTransactionCount``
  answers. It is also what places a contract created by the transaction (Ethereum's CREATE
  address, :func:`chain.execution.contract_address`), so ``getCreateAddress(tx)`` is right.
  For a pending transaction it is the committed count plus the sender's transactions ahead
  of it in the pool (the producer takes the pool in order).
- ``type`` ``0x0`` with ``gasPrice`` ``0x0``: nothing is charged for gas (see
  :mod:`node.rpc.fees`).
- ``v`` = ``chainId * 2 + 35`` (EIP-155) with ``r`` = ``s`` = ``0x0``: no ECDSA signature
  exists; these values are in range, agree with ``chainId``, and recover nobody. The SM2
  signature and the public key it verifies under are ``sm2Signature`` and
  ``senderPublicKey``.
- ``replayNonce`` (32-byte hex) and ``blockLimit`` are the ledger's replay protection.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from chain.execution import sender_address
from chain.primitives import Address
from chain.types import Block, Transaction
from node.ledger import Ledger
from node.mempool import Mempool
from node.rpc.format import data, quantity


def transaction_json(
    tx: Transaction,
    *,
    evm_nonce: int,
    block: Block | None = None,
    index: int | None = None,
) -> dict[str, Any]:
    """An Ethereum transaction object; the block fields are ``null`` while it is pending."""
    return {
        "hash": data(tx.hash),
        "blockHash": None if block is None else data(block.hash),
        "blockNumber": None if block is None else quantity(block.header.height),
        "transactionIndex": None if index is None else quantity(index),
        "from": data(sender_address(tx)),
        "to": None if tx.to is None else data(tx.to),
        "value": quantity(tx.value),
        "gas": quantity(tx.gas_limit),
        "gasPrice": "0x0",
        "input": data(tx.data),
        "nonce": quantity(evm_nonce),
        "type": "0x0",
        "chainId": quantity(tx.chain_id),
        "v": quantity(tx.chain_id * 2 + 35),
        "r": "0x0",
        "s": "0x0",
        "replayNonce": data(tx.nonce),
        "blockLimit": quantity(tx.block_limit),
        "senderPublicKey": data(tx.public_key),
        "sm2Signature": data(tx.signature),
    }


class TransactionShaper:
    """Transaction objects of committed blocks and of the pool, with their EVM nonces."""

    def __init__(self, ledger: Ledger, mempool: Mempool) -> None:
        self.ledger = ledger
        self.mempool = mempool

    def _committed_nonce(self, sender: Address, height: int, cache: dict[Address, int]) -> int:
        if sender not in cache:
            parent = self.ledger.block(height - 1) if height > 0 else None
            cache[sender] = (
                0 if parent is None else self.ledger.account(parent.header, sender).nonce
            )
        return cache[sender]

    def block_transactions(self, block: Block) -> list[dict[str, Any]]:
        """Every transaction of a committed block, in order."""
        height = block.header.height
        before: dict[Address, int] = {}
        seen: dict[Address, int] = {}
        shaped = []
        for index, tx in enumerate(block.transactions):
            sender = sender_address(tx)
            nonce = self._committed_nonce(sender, height, before) + seen.get(sender, 0)
            seen[sender] = seen.get(sender, 0) + 1
            shaped.append(transaction_json(tx, evm_nonce=nonce, block=block, index=index))
        return shaped

    def committed(self, block: Block, index: int) -> dict[str, Any]:
        """The transaction at ``index`` of a committed block."""
        tx = block.transactions[index]
        sender = sender_address(tx)
        earlier = sum(1 for t in block.transactions[:index] if sender_address(t) == sender)
        nonce = self._committed_nonce(sender, block.header.height, {}) + earlier
        return transaction_json(tx, evm_nonce=nonce, block=block, index=index)

    def pending(self, tx: Transaction) -> dict[str, Any]:
        """A transaction of the pool, with the EVM nonce it will have if the pool's order
        holds."""
        sender = sender_address(tx)
        nonce = self.ledger.account(self.ledger.head, sender).nonce
        nonce += self._ahead_in_pool(sender, tx)
        return transaction_json(tx, evm_nonce=nonce)

    def _ahead_in_pool(self, sender: Address, tx: Transaction) -> int:
        """The sender's transactions queued before ``tx``; 0 for a transaction already
        taken into the block being committed (the pool no longer orders it)."""
        ahead = 0
        for queued in self.mempool.pending():
            if queued.hash == tx.hash:
                return ahead
            if sender_address(queued) == sender:
                ahead += 1
        return 0

    def pending_count(self, sender: Address) -> int:
        """How many of the pool's transactions ``sender`` sent."""
        return sum(1 for tx in self.mempool.pending() if sender_address(tx) == sender)

    def pending_block_transactions(self, txs: Iterable[Transaction]) -> list[dict[str, Any]]:
        """The pool's transactions as those of the next block."""
        head = self.ledger.head
        base: dict[Address, int] = {}
        seen: dict[Address, int] = {}
        shaped = []
        for tx in txs:
            sender = sender_address(tx)
            if sender not in base:
                base[sender] = self.ledger.account(head, sender).nonce
            nonce = base[sender] + seen.get(sender, 0)
            seen[sender] = seen.get(sender, 0) + 1
            shaped.append(transaction_json(tx, evm_nonce=nonce))
        return shaped
