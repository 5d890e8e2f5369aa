"""Roles epochs (node.roles_watch): heads share an epoch only when every block between them
is known to have left the Permissions contract's storage alone, and an epoch is never used
again after a rewind."""

from __future__ import annotations

from chain.primitives import ZERO_HASH, Address, Hash32
from chain.types import Header
from contracts.permissions import PERMISSIONS_ADDRESS
from node.roles_watch import RolesWatch

OTHER = Address(b"\x42" * 20)


def _header(parent: Header | None, height: int, tag: int = 0) -> Header:
    return Header(
        parent_hash=ZERO_HASH if parent is None else parent.hash,
        height=height,
        timestamp_ms=1_700_000_000_000 + 1_000 * height + tag,
        proposer=Address(bytes(20)),
        tx_root=ZERO_HASH,
        receipt_root=ZERO_HASH,
        state_root=Hash32(bytes([tag]) * 32),
        validator_set_hash=ZERO_HASH,
        last_commit_hash=ZERO_HASH,
    )


def test_epochs_follow_what_each_block_touched() -> None:
    genesis = _header(None, 0)
    watch = RolesWatch(genesis)
    kept = _header(genesis, 1)
    changed = _header(kept, 2)
    unknown = _header(changed, 3)
    watch.executed(kept.hash, frozenset({OTHER}))
    watch.executed(changed.hash, frozenset({OTHER, PERMISSIONS_ADDRESS}))
    assert watch.keeps_roles(kept.hash)
    assert not watch.keeps_roles(changed.hash) and not watch.keeps_roles(unknown.hash)
    watch.committed([kept, changed])
    watch.committed([unknown])
    assert watch.epoch(kept) == watch.epoch(genesis)
    assert watch.epoch(changed) != watch.epoch(kept)
    # A block whose execution was not seen starts a new epoch too.
    assert watch.epoch(unknown) not in {watch.epoch(changed), watch.epoch(genesis)}


def test_a_rewind_never_hands_out_an_epoch_of_a_discarded_block() -> None:
    genesis = _header(None, 0)
    watch = RolesWatch(genesis)
    first = _header(genesis, 1)
    changed = _header(first, 2)
    watch.executed(first.hash, frozenset())
    watch.executed(changed.hash, frozenset({PERMISSIONS_ADDRESS}))
    watch.committed([first, changed])
    discarded = {watch.epoch(genesis), watch.epoch(first), watch.epoch(changed)}
    watch.rewound(first)
    assert watch.epoch(changed) is None and watch.epoch(genesis) is None
    assert watch.epoch(first) not in discarded
    again = _header(first, 2, tag=1)
    watch.executed(again.hash, frozenset({PERMISSIONS_ADDRESS}))
    watch.committed([again])
    assert watch.epoch(again) not in discarded | {watch.epoch(first)}
