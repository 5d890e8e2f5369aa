"""The size limits every layer of the chain shares, in one place, and the invariants that tie
them together: a transaction fits in a block, a block fits in a proposal, a proposal fits in a
p2p frame and in a WAL record. Each other module takes its bound from here rather than
stating its own number, and :func:`check_limits` (run at import) fails loudly if an edit ever
breaks the ordering.

The process's recursion limit lives here too. py-evm needs about 12 Python frames per EVM call
level (1,024 levels), and sets 12,288 at import; ``py_ecc`` (imported by ``eth`` and
``eth_account``) raises it to 100,000, far past what the C stack can hold for parsers that
recurse in C. :func:`cap_recursion_limit` brings it back to what py-evm needs; every package
that imports those dependencies calls it after its imports, and so does every process entry
point. Parsers that face the outside never rely on it: they bound nesting before they recurse
(:mod:`chain.bounded_json`).
"""

from __future__ import annotations

import sys

KIB = 1024
MIB = 1024 * KIB

RECURSION_LIMIT = 12_288
"""The recursion limit py-evm asks for (``eth.EVM_RECURSION_LIMIT``: 1,024 call levels × 12
frames), and the most this process allows."""

MAX_TX_DATA_BYTES = 128 * KIB
"""Largest ``data`` of a transaction (call data or init code)."""

MAX_TX_BYTES = 160 * KIB
"""Largest canonical encoding of a whole transaction."""

MIN_BLOCK_BYTES = MAX_TX_BYTES + 64 * KIB
"""The least a genesis may set as its block size in bytes: the largest transaction, plus
room for the header and the parent's commit certificate."""

MAX_BLOCK_BYTES_CEILING = 3 * MIB
"""The most a genesis may set as its block size in bytes: leaves room in a proposal frame for
the proposal's own fields and signature."""

DEFAULT_MAX_BLOCK_BYTES = 2 * MIB
"""The block size in bytes a new genesis gets unless it says otherwise."""

MAX_PROPOSAL_BLOCK_BYTES = 4 * MIB
"""The most block bytes a proposal message may carry (decoding refuses more)."""

MAX_FRAME_BYTES = 4 * MIB + 64 * KIB
"""The largest p2p frame after the handshake: a proposal with the largest block, plus room."""

MAX_PREAUTH_FRAME_BYTES = 1 * KIB
"""The largest p2p frame before the peer is authenticated (the handshake's frames): a
stranger cannot make the node buffer more than this per connection."""

MAX_RLP_DEPTH = 32
"""Deepest list nesting :func:`chain.encoding.decode` accepts, checked without recursion
before the recursive decoder runs; no ledger or wire type nests more than 5 levels."""

MAX_WAL_RECORD_BYTES = 8 * MIB
"""The largest payload one WAL record may hold: any consensus message, proposals included."""

MAX_RPC_JSON_DEPTH = 32
"""Deepest nesting of one JSON-RPC request (HTTP body or WebSocket message). A real request
nests at most 5 levels (a batch holding eth_getLogs with topic alternatives)."""

MAX_TOML_DEPTH = 16
"""Deepest nesting of arrays and inline tables in a genesis file or ``node.toml`` (table
headers count: ``[[validators]]`` is 2)."""

MAX_GENESIS_BYTES = 16 * MIB
"""Largest genesis file: room for system contracts' code and storage many times over."""

MAX_CONFIG_BYTES = 256 * KIB
"""Largest ``node.toml``: room for hundreds of peers and observers."""


MAX_UPGRADES = 256
"""Most ``[[upgrades]]`` entries one genesis may schedule (:mod:`chain.upgrades`)."""

MAX_UPGRADE_RECORD_BYTES = 256 * KIB
"""Largest record of a node's adopted schedule (``upgrades-adopted.json`` in its data
directory): :data:`MAX_UPGRADES` entries with room to spare."""


MAX_MEMPOOL_BYTES = 256 * MIB
"""The most transaction bytes one node's mempool holds; beyond it admission refuses with
``MempoolFull`` (never a silent drop of what was accepted)."""


def check_limits() -> None:
    """Raise ``AssertionError`` unless the limits nest: tx < block ceiling < proposal block <
    frame < WAL record."""
    assert MAX_TX_DATA_BYTES < MAX_TX_BYTES
    assert MAX_TX_BYTES < MIN_BLOCK_BYTES <= DEFAULT_MAX_BLOCK_BYTES <= MAX_BLOCK_BYTES_CEILING
    assert MAX_BLOCK_BYTES_CEILING < MAX_PROPOSAL_BLOCK_BYTES
    assert MAX_PROPOSAL_BLOCK_BYTES < MAX_FRAME_BYTES
    assert MAX_PREAUTH_FRAME_BYTES < MAX_TX_BYTES
    assert MAX_FRAME_BYTES < MAX_WAL_RECORD_BYTES


def cap_recursion_limit() -> None:
    """Set the interpreter's recursion limit to :data:`RECURSION_LIMIT` (lowering whatever a
    dependency raised it to at import)."""
    if sys.getrecursionlimit() != RECURSION_LIMIT:
        sys.setrecursionlimit(RECURSION_LIMIT)


check_limits()
