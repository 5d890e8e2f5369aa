"""Which committed blocks kept the Permissions contract's storage as it was, so that roles read
at one head can serve the next without reading the contract's account again.

Every block the ledger executes reports the accounts its execution touched
(:attr:`chain.execution.BlockExecution.accounts_touched`); a block that left the Permissions
contract out kept its storage. Committed heads are numbered by *roles epoch*: a head takes
its parent's epoch if its block is known to have kept the storage, else a number never used
before. Two heads with the same epoch therefore have the same Permissions storage; a head
without an epoch (unknown, or forgotten) is read as before.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import TypeVar

from chain.primitives import Address, Hash32
from chain.types import Header
from contracts.permissions import PERMISSIONS_ADDRESS

REMEMBERED_BLOCKS = 1024
"""Executed blocks, and committed heads, whose verdict is kept (oldest forgotten first);
more than the blocks a node executes ahead or keeps as candidates."""


class RolesWatch:
    """Roles epochs of committed heads (see the module documentation). Thread-safe."""

    def __init__(self, head: Header, address: Address = PERMISSIONS_ADDRESS) -> None:
        """Start at ``head`` (a fresh epoch); watch the contract at ``address``."""
        self._address = address
        self._lock = threading.Lock()
        self._kept: OrderedDict[Hash32, None] = OrderedDict()
        self._epochs: OrderedDict[Hash32, int] = OrderedDict()
        self._last_epoch = 0
        self._epochs[head.hash] = self._last_epoch

    def executed(self, block_hash: Hash32, accounts_touched: frozenset[Address]) -> None:
        """Note the accounts the execution of block ``block_hash`` touched."""
        if self._address in accounts_touched:
            return
        with self._lock:
            self._kept[block_hash] = None
            _trim(self._kept)

    def keeps_roles(self, block_hash: Hash32) -> bool:
        """Whether block ``block_hash`` is known to have left the contract's storage as it was
        (``False`` when unknown)."""
        with self._lock:
            return block_hash in self._kept

    def committed(self, headers: Iterable[Header]) -> None:
        """Number the heads ``headers``, committed in this order on top of the last."""
        with self._lock:
            for header in headers:
                parent_epoch = self._epochs.get(header.parent_hash)
                if parent_epoch is None or header.hash not in self._kept:
                    self._last_epoch += 1
                    parent_epoch = self._last_epoch
                self._epochs[header.hash] = parent_epoch
                _trim(self._epochs)

    def rewound(self, head: Header) -> None:
        """The chain went back to ``head``: every epoch known is forgotten and ``head`` starts
        a fresh one (blocks made on it must never share an epoch with discarded ones)."""
        with self._lock:
            self._epochs.clear()
            self._kept.clear()
            self._last_epoch += 1
            self._epochs[head.hash] = self._last_epoch

    def epoch(self, header: Header) -> int | None:
        """The roles epoch of the committed head ``header``, or ``None`` if unknown."""
        with self._lock:
            return self._epochs.get(header.hash)


_Value = TypeVar("_Value")


def _trim(entries: OrderedDict[Hash32, _Value]) -> None:
    while len(entries) > REMEMBERED_BLOCKS:
        entries.popitem(last=False)
