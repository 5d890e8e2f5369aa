"""The mempool: transactions admitted but not yet committed.

Admission runs every check a block would (:func:`chain.validation.decode_transaction` and
:func:`chain.validation.validate_transaction`: encoding, size, chain id, block-limit window,
duplicate replay nonce against the committed nonce index, SM2 signature) plus the two that
belong to the node: the sender's permission (:class:`Permissions`: the Permissions contract at
the head state, or static genesis roles, see :mod:`node.permissions`), and the pool's own bound
and nonce uniqueness. A refused transaction raises a typed error and never reaches a block;
the producer checks the permission again when it takes a transaction for a block, since
governance may have revoked or frozen its sender meanwhile.

The pool is bounded in transactions and in bytes; a full pool refuses at admission
(MempoolFull), and what it admitted stays pending until a block commits it or a rule makes it
unincludable (expired, committed nonce, sender no longer permitted), each settled with its
reason. A transaction that does not fit in this block waits for the next. With a
:class:`~node.storage.mempool_store.MempoolStore`, admitted transactions also survive a
restart of the node (or of the whole network): :meth:`Mempool.restore` pools them again,
re-checked against the head.

:meth:`Mempool.check` is pure with respect to the pool and may run on worker threads (SM2
verification through OpenSSL releases the GIL, so several checks proceed in parallel);
:meth:`Mempool.add`, :meth:`Mempool.take` and :meth:`Mempool.settle` run on the event loop.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from chain.crypto import sm3
from chain.errors import ValidationError
from chain.execution import sender_address
from chain.limits import MAX_MEMPOOL_BYTES
from chain.primitives import Hash32
from chain.types import Transaction
from chain.validation import (
    DuplicateNonce,
    TxRules,
    decode_transaction,
    validate_transaction,
)

# Permission checks live in node.permissions; admission callers import them from here too.
from node.permissions import ROLE_DEPLOYER as ROLE_DEPLOYER
from node.permissions import ROLE_SENDER as ROLE_SENDER
from node.permissions import AccountFrozen as AccountFrozen
from node.permissions import NotPermitted as NotPermitted
from node.permissions import Permissions as Permissions
from node.storage.mempool_store import MempoolStore


class MempoolError(ValidationError):
    """A transaction the mempool refuses for a reason of its own (not a protocol rule)."""


class MempoolFull(MempoolError):
    """The pool already holds as many transactions, or as many bytes, as it may."""

    def __init__(self, *, tx_hash: Hash32, capacity: int, max_bytes: int | None = None) -> None:
        bound = f"{capacity} transactions" if max_bytes is None else f"{max_bytes} bytes"
        super().__init__(f"transaction {tx_hash.hex()}: mempool full ({bound})")
        self.tx_hash = tx_hash
        self.capacity = capacity
        self.max_bytes = max_bytes


@dataclass(frozen=True)
class Restored:
    """What :meth:`Mempool.restore` did with the transactions kept from before a restart."""

    restored: int
    """Transactions checked again and pooled."""
    refused: tuple[tuple[Hash32, str], ...]
    """Transactions that no longer pass admission (committed meanwhile, expired, sender
    frozen...), with the reason; they are forgotten."""


@dataclass(frozen=True)
class Outcome:
    """What became of a transaction the pool held."""

    height: int | None
    """The height of the block that committed it, or ``None`` if it was dropped."""
    reason: str = ""
    """Why it was dropped."""
    index: int | None = None
    """Its position in the block that committed it, when the one who tells knows it."""


class Mempool:
    """A bounded, arrival-ordered pool of admitted transactions."""

    def __init__(
        self,
        rules: TxRules,
        permissions: Permissions,
        *,
        capacity: int,
        nonce_committed: Callable[[Hash32], bool],
        next_height: Callable[[], int],
        max_bytes: int = MAX_MEMPOOL_BYTES,
        store: MempoolStore | None = None,
    ) -> None:
        """``nonce_committed`` answers from the committed nonce index; ``next_height`` gives
        the height of the next block (the height admission validates against); the pool
        holds at most ``capacity`` transactions and ``max_bytes`` bytes of them. With a
        ``store``, every admitted transaction is kept there until it is settled, so that
        :meth:`restore` brings it back after a restart."""
        self.rules = rules
        self.permissions = permissions
        self.capacity = capacity
        self.max_bytes = max_bytes
        self._store = store
        self._stored: dict[Hash32, int] = {}
        self._sizes: dict[Hash32, int] = {}
        self._bytes = 0
        self._nonce_committed = nonce_committed
        self._next_height = next_height
        self._pending: OrderedDict[Hash32, Transaction] = OrderedDict()
        self._in_flight: dict[Hash32, Transaction] = {}
        self._nonces: set[Hash32] = set()
        self._waiters: dict[Hash32, list[asyncio.Future[Outcome]]] = {}
        self._listeners: list[Callable[[], None]] = []

    def __len__(self) -> int:
        return len(self._pending) + len(self._in_flight)

    @property
    def pending_count(self) -> int:
        """Transactions waiting to be taken into a block."""
        return len(self._pending)

    def get(self, tx_hash: Hash32) -> Transaction | None:
        """The transaction with this hash if the pool holds it (pending or being committed)."""
        return self._pending.get(tx_hash) or self._in_flight.get(tx_hash)

    def on_arrival(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` (on the event loop) whenever a transaction is added."""
        self._listeners.append(listener)

    def check(self, raw: bytes) -> Transaction:
        """Decode ``raw`` and run every admission rule that does not depend on the pool's
        contents; return the transaction or raise the refusal. Safe on worker threads."""
        tx = decode_transaction(raw, self.rules)
        validate_transaction(
            tx, self.rules, height=self._next_height(), nonce_seen=self._nonce_seen
        )
        self.permissions.check(tx, sender_address(tx))
        return tx

    def add(self, tx: Transaction) -> None:
        """Insert a checked transaction; raises DuplicateNonce if the pool holds its nonce,
        MempoolFull if the pool is full."""
        if tx.nonce in self._nonces:
            raise DuplicateNonce(tx_hash=tx.hash, nonce=tx.nonce, committed=False)
        if len(self) >= self.capacity:
            raise MempoolFull(tx_hash=tx.hash, capacity=self.capacity)
        raw = tx.encode()
        if self._bytes + len(raw) > self.max_bytes:
            raise MempoolFull(tx_hash=tx.hash, capacity=self.capacity, max_bytes=self.max_bytes)
        self._insert(tx, raw, None)

    def _insert(self, tx: Transaction, raw: bytes, stored_key: int | None) -> None:
        if self._store is not None:
            self._stored[tx.hash] = self._store.append(raw) if stored_key is None else stored_key
        self._sizes[tx.hash] = len(raw)
        self._bytes += len(raw)
        self._pending[tx.hash] = tx
        self._nonces.add(tx.nonce)
        for listener in self._listeners:
            listener()

    def submit(self, raw: bytes) -> Transaction:
        """:meth:`check` then :meth:`add` in one call."""
        tx = self.check(raw)
        self.add(tx)
        return tx

    def take(self, max_count: int) -> list[Transaction]:
        """Remove up to ``max_count`` pending transactions, oldest first, for a block. They stay
        known to the pool (duplicates are still refused) until :meth:`settle`."""
        taken: list[Transaction] = []
        while self._pending and len(taken) < max_count:
            tx_hash, tx = self._pending.popitem(last=False)
            self._in_flight[tx_hash] = tx
            taken.append(tx)
        return taken

    def use_permissions(self, permissions: Permissions) -> None:
        """Check admissions against ``permissions`` from now on."""
        self.permissions = permissions

    def requeue(self, txs: Iterable[Transaction]) -> None:
        """Return taken transactions to the front of the pending queue, in their order, for a
        later block."""
        for tx in reversed(tuple(txs)):
            if self._in_flight.pop(tx.hash, None) is not None:
                self._pending[tx.hash] = tx
                self._pending.move_to_end(tx.hash, last=False)

    def settle(self, outcomes: Mapping[Hash32, Outcome]) -> None:
        """Forget taken transactions and resolve their waiters with their outcome."""
        forget: list[int] = []
        for tx_hash, outcome in outcomes.items():
            tx = self._in_flight.pop(tx_hash, None) or self._pending.pop(tx_hash, None)
            if tx is not None:
                self._nonces.discard(tx.nonce)
                self._bytes -= self._sizes.pop(tx_hash, 0)
                stored_key = self._stored.pop(tx_hash, None)
                if stored_key is not None:
                    forget.append(stored_key)
            for waiter in self._waiters.pop(tx_hash, []):
                if not waiter.done():
                    waiter.set_result(outcome)
        if forget and self._store is not None:
            self._store.remove(forget)

    def settle_committed(self, height: int, transactions: Iterable[Transaction]) -> None:
        """Settle ``transactions``, committed in this order in the block at ``height``: each
        waiter learns the block and its position there (what a receipt is built from)."""
        self.settle({tx.hash: Outcome(height, index=i) for i, tx in enumerate(transactions)})

    def drop_all(self, reason: str) -> list[Transaction]:
        """Forget every transaction the pool holds (pending and taken for a block), resolving
        their waiters as dropped with ``reason``; returns them. The dev chain's evm_revert
        does this, as Hardhat drops its pending transactions on revert."""
        dropped = [*self._pending.values(), *self._in_flight.values()]
        self.settle({tx.hash: Outcome(None, reason) for tx in dropped})
        return dropped

    def restore(self) -> Restored:
        """Pool again the transactions the store kept from before a restart, in their
        arrival order, each checked again by every admission rule against the current head
        (so one committed meanwhile, expired, or whose sender lost its role is refused and
        forgotten). Call once, before admitting anything."""
        if self._store is None:
            return Restored(0, ())
        restored = 0
        refused: list[tuple[Hash32, str]] = []
        forget: list[int] = []
        for key, raw in list(self._store.records()):
            try:
                tx = self.check(raw)
                if tx.nonce in self._nonces:
                    raise DuplicateNonce(tx_hash=tx.hash, nonce=tx.nonce, committed=False)
            except ValidationError as exc:
                refused.append((sm3(raw), str(exc)))
                forget.append(key)
                continue
            self._insert(tx, raw, key)
            restored += 1
        self._store.remove(forget)
        if restored:
            for listener in self._listeners:
                listener()
        return Restored(restored, tuple(refused))

    def close(self) -> None:
        """Close the store (what it holds stays for :meth:`restore`)."""
        if self._store is not None:
            self._store.close()
            self._store = None

    def drop_expired(self, height: int) -> list[Transaction]:
        """Remove pending transactions whose ``block_limit`` is below ``height``."""
        expired = [tx for tx in self._pending.values() if tx.block_limit < height]
        self.settle(
            {tx.hash: Outcome(None, f"expired: block limit {tx.block_limit}") for tx in expired}
        )
        return expired

    def waiter(self, tx_hash: Hash32) -> asyncio.Future[Outcome] | None:
        """A future resolved when the pooled transaction ``tx_hash`` is committed or dropped;
        ``None`` if the pool does not hold it."""
        if self.get(tx_hash) is None:
            return None
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(tx_hash, []).append(future)
        return future

    async def wait(self, tx_hash: Hash32, timeout_s: float) -> Outcome | None:
        """The outcome of the pooled transaction ``tx_hash`` once it is committed or
        dropped; None if the pool does not hold it or ``timeout_s`` passes first. A wait
        that ends unanswered (timed out, or cancelled because its request went away) is
        forgotten at once. The waiter is this call's own future, so it needs no shield."""
        waiter = self.waiter(tx_hash)
        if waiter is None:
            return None
        try:
            return await asyncio.wait_for(waiter, timeout_s)
        except TimeoutError:
            return None
        finally:
            if not waiter.done() or waiter.cancelled():
                self.forget_waiter(tx_hash, waiter)

    def waiting(self, tx_hash: Hash32) -> int:
        """How many waiters (see :meth:`waiter`) the pooled transaction ``tx_hash`` has."""
        return len(self._waiters.get(tx_hash, ()))

    def forget_waiter(self, tx_hash: Hash32, future: asyncio.Future[Outcome]) -> None:
        """Remove a waiter that gave up (timed out or was cancelled)."""
        waiters = self._waiters.get(tx_hash)
        if waiters and future in waiters:
            waiters.remove(future)
            if not waiters:
                del self._waiters[tx_hash]

    def pending(self) -> Iterable[Transaction]:
        """Pending transactions, oldest first."""
        return tuple(self._pending.values())

    def _nonce_seen(self, nonce: Hash32) -> bool:
        return nonce in self._nonces or self._nonce_committed(nonce)
