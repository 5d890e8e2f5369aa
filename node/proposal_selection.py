"""Which offered transactions a proposal on top of a parent may carry
(:meth:`node.ledger.Ledger.prepare_block`): each valid against the parent, its nonce not
repeated in the block, its sender permitted by the parent's roles, and the whole within the
block's byte budget."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from chain.errors import ChainError
from chain.primitives import Hash32
from chain.types import Transaction
from chain.validation import TxRules, validate_block_transactions
from node.permissions import Permissions


@dataclass
class Selection:
    """The outcome of :func:`select_transactions`."""

    included: list[Transaction] = field(default_factory=list)
    """What the block carries, in the order offered."""
    dropped: list[tuple[Transaction, str]] = field(default_factory=list)
    """What no block on this parent may carry, with the reason."""
    deferred: list[Transaction] = field(default_factory=list)
    """Valid, but past the byte budget: they wait for a later block."""


def select_transactions(
    txs: Sequence[Transaction],
    *,
    rules: TxRules,
    height: int,
    nonce_committed: Callable[[Hash32], bool],
    permissions: Permissions,
    bytes_left: int,
) -> Selection:
    """Split ``txs`` into what a block at ``height`` includes, drops and defers (see
    :class:`Selection`); ``bytes_left`` is the budget of transaction encodings."""
    selection = Selection()
    nonces: set[Hash32] = set()
    for tx in txs:
        try:
            validate_block_transactions([tx], rules, height, nonce_committed)
        except ChainError as exc:
            selection.dropped.append((tx, str(exc)))
            continue
        if tx.nonce in nonces:
            selection.dropped.append((tx, "nonce repeated in the block"))
            continue
        refusal = permissions.refusal(tx)
        if refusal is not None:
            selection.dropped.append((tx, f"not permitted: {refusal}"))
            continue
        size = len(tx.encode())
        if size > bytes_left:
            selection.deferred.append(tx)
            continue
        bytes_left -= size
        nonces.add(tx.nonce)
        selection.included.append(tx)
    return selection
