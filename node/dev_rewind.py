"""Going back to a snapshot on the dev chain (``evm_snapshot`` / ``evm_revert``), and the
rule that no other chain may.

On every chain a committed block is final: its certificate was signed by a quorum of
validators that each hold the block, other nodes have synced it, and applications have read
its receipts. A *single-validator dev chain* (``lianxin dev`` / ``lianxin init --dev``: one
validator, the node holding its key and the dev accounts unlocked) has nobody else: the one
node made every block, signed every certificate and serves every reader, which is a test
suite that asked for the rewind. There, and only there, discarding blocks above a snapshot
hides nothing from anyone and is what Hardhat suites expect (``loadFixture`` reverts to a
snapshot before each test).

:func:`check_dev_rewind` is the ledger's own guard (:meth:`node.ledger.Ledger.rewind_dev`
calls it inside its write lock): the genesis must name exactly one validator, the set ruling
the next height must still be one validator, and this node must hold its key; the JSON-RPC
layer additionally requires the dev accounts (:mod:`node.rpc.dev_methods`). The rewind
itself is ONE LMDB write transaction (:mod:`node.storage.rewind`).

:class:`DevSnapshots` keeps Hardhat's snapshot semantics: ids are increasing quantities;
reverting to one discards it and every later one; an unknown or used id answers false.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chain.commit import ValidatorSet
from chain.genesis import Genesis
from chain.primitives import Address, Hash32
from chain.types import Block, Header
from node.ledger_types import LedgerError

MAX_SNAPSHOTS = 10_000
"""Most snapshots kept at once; the oldest are forgotten beyond (their ids answer false)."""


class RewindRefused(LedgerError):
    """A rewind asked of a chain that may not rewind, or to a height it cannot go back to;
    nothing was changed."""


def check_dev_rewind(
    genesis: Genesis,
    ruling: ValidatorSet,
    validator: Address | None,
    head: Header,
    height: int,
) -> None:
    """Raise RewindRefused unless a ledger of ``genesis`` whose validator key has address
    ``validator`` (``None``: it holds none), with ``ruling`` the validator set of the next
    height, may rewind from ``head`` to ``height``: a chain of one validator from genesis
    on, still of one, this node, and a height from genesis to the head."""
    members = ruling.validators
    if len(genesis.validators) != 1 or len(members) != 1:
        count = max(len(genesis.validators), len(members))
        raise RewindRefused(
            f"this chain has {count} validators: its committed blocks are final and held by "
            "every validator; only a single-validator dev chain may rewind"
        )
    if validator is None or validator != members[0].address:
        raise RewindRefused(
            "this node is not the chain's validator: only the node that made the blocks of "
            "a single-validator dev chain may rewind them"
        )
    if not 0 <= height <= head.height:
        raise RewindRefused(f"cannot rewind to height {height}: the head is {head.height}")


@dataclass(frozen=True)
class Rewound:
    """What :meth:`node.ledger.Ledger.rewind_dev` did."""

    head: Header
    """The new head."""
    unwritten: tuple[Block, ...]
    """Blocks that were executed ahead and not yet written, discarded with the others: their
    transactions never reach the store, so their senders must be told they were dropped."""


@dataclass(frozen=True)
class Snapshot:
    """What ``evm_snapshot`` recorded: the head, and the block clock's state."""

    height: int
    block_hash: Hash32
    shift_ms: int
    """The evm_increaseTime shift then in force."""
    next_ms: int | None
    """The time evm_setNextBlockTimestamp had pinned for the next block, if any."""


@dataclass
class DevSnapshots:
    """The live snapshots of one dev node, by id (Hardhat's ``evm_snapshot`` ids)."""

    _next_id: int = 1
    _taken: dict[int, Snapshot] = field(default_factory=dict)

    def take(self, snapshot: Snapshot) -> int:
        """Record ``snapshot``; returns its id."""
        snapshot_id = self._next_id
        self._next_id += 1
        self._taken[snapshot_id] = snapshot
        if len(self._taken) > MAX_SNAPSHOTS:
            del self._taken[min(self._taken)]
        return snapshot_id

    def get(self, snapshot_id: int) -> Snapshot | None:
        """The live snapshot ``snapshot_id``, or ``None``; nothing is used up."""
        return self._taken.get(snapshot_id)

    def use(self, snapshot_id: int) -> Snapshot | None:
        """The snapshot ``snapshot_id``, discarding it and every later one; ``None`` for an
        id never given or already used (nothing discarded then)."""
        snapshot = self._taken.get(snapshot_id)
        if snapshot is None:
            return None
        for later in [i for i in self._taken if i >= snapshot_id]:
            del self._taken[later]
        return snapshot

    def forget_above(self, height: int) -> None:
        """Discard snapshots of heads above ``height`` (their blocks no longer exist)."""
        for stale in [i for i, s in self._taken.items() if s.height > height]:
            del self._taken[stale]

    def __len__(self) -> int:
        return len(self._taken)
