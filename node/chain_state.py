"""Read-only lookups in the committed EVM state: account nonce, balance, code and storage.

The state that :mod:`chain.execution` writes is py-evm's hexary Merkle-Patricia trie, keyed
by Keccak: the account trie maps ``keccak(address)`` to ``RLP([nonce, balance, storage_root,
code_hash])``, each account's storage trie maps ``keccak(slot as 32 bytes)`` to
``RLP(value)``, and code is stored under its Keccak hash. Trie nodes are stored under the
Keccak of their encoding; nodes shorter than 32 bytes are embedded in their parent.

This module walks that structure with the canonical RLP decoder, so that eth_getBalance,
eth_getCode, eth_getStorageAt and eth_getTransactionCount need neither a py-evm import outside
``chain/execution.py`` nor a full EVM call. Every lookup takes the state root it reads at, so
any committed block's state can be queried.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_utils.crypto import keccak

from chain import encoding as enc
from chain.encoding import RLPItem
from chain.errors import StorageError
from chain.primitives import Address, Hash32
from chain.storage import KeyValueReader

BLANK_ROOT = keccak(enc.encode(b""))
"""Root of an empty trie: Keccak of the RLP empty string."""

EMPTY_CODE_HASH = keccak(b"")
"""Code hash of an account without code."""

_BRANCH_SIZE = 17
_MAX_DEPTH = 130


@dataclass(frozen=True)
class Account:
    """One account of the EVM state."""

    nonce: int = 0
    """Transactions sent (plus contracts created, for a contract account)."""
    balance: int = 0
    """Native balance."""
    storage_root: bytes = BLANK_ROOT
    """Root of the account's storage trie."""
    code_hash: bytes = EMPTY_CODE_HASH
    """Keccak of the account's runtime code."""


def _nibbles(key: bytes) -> list[int]:
    out: list[int] = []
    for byte in key:
        out.append(byte >> 4)
        out.append(byte & 0x0F)
    return out


def _decode_path(encoded: bytes) -> tuple[list[int], bool]:
    """Hex-prefix decoding: the nibble path and whether the node is a leaf."""
    if not encoded:
        raise StorageError("state trie: empty hex-prefix path")
    flag = encoded[0] >> 4
    nibbles = _nibbles(encoded)
    path = nibbles[1:] if flag & 1 else nibbles[2:]
    return path, bool(flag & 2)


def _load(reader: KeyValueReader, reference: RLPItem) -> RLPItem:
    if isinstance(reference, list):
        return reference
    if len(reference) == 32:
        raw = reader.get(reference)
        if raw is None:
            raise StorageError(f"state trie: node {reference.hex()} missing")
        return enc.decode(raw)
    return enc.decode(reference)


def trie_get(reader: KeyValueReader, root: bytes, key: bytes) -> bytes | None:
    """The value stored under ``key`` in the trie with ``root``, or ``None``."""
    if root == BLANK_ROOT:
        return None
    path = _nibbles(key)
    node = _load(reader, root)
    for _ in range(_MAX_DEPTH):
        if not isinstance(node, list):
            raise StorageError("state trie: node is not a list")
        if len(node) == _BRANCH_SIZE:
            if not path:
                value = node[16]
                return value if isinstance(value, bytes) and value else None
            child = node[path[0]]
            path = path[1:]
            if child == b"":
                return None
            node = _load(reader, child)
        elif len(node) == 2:
            encoded_path, child = node
            if not isinstance(encoded_path, bytes):
                raise StorageError("state trie: malformed short node")
            node_path, is_leaf = _decode_path(encoded_path)
            if is_leaf:
                if node_path != path or not isinstance(child, bytes):
                    return None
                return child
            if path[: len(node_path)] != node_path:
                return None
            path = path[len(node_path) :]
            node = _load(reader, child)
        elif len(node) == 0:
            return None
        else:
            raise StorageError(f"state trie: node of {len(node)} items")
    raise StorageError("state trie: deeper than any key")


def account_at(reader: KeyValueReader, state_root: Hash32, address: Address) -> Account:
    """The account at ``address`` in the state with ``state_root`` (empty if absent)."""
    raw = trie_get(reader, state_root, keccak(address))
    if raw is None:
        return Account()
    nonce, balance, storage_root, code_hash = enc.as_list(enc.decode(raw), "Account", 4)
    return Account(
        nonce=int.from_bytes(enc.as_bytes(nonce, "Account.nonce"), "big"),
        balance=int.from_bytes(enc.as_bytes(balance, "Account.balance"), "big"),
        storage_root=enc.as_bytes(storage_root, "Account.storage_root", 32),
        code_hash=enc.as_bytes(code_hash, "Account.code_hash", 32),
    )


def code_at(reader: KeyValueReader, state_root: Hash32, address: Address) -> bytes:
    """The runtime code at ``address`` (empty for a plain or absent account)."""
    account = account_at(reader, state_root, address)
    if account.code_hash == EMPTY_CODE_HASH:
        return b""
    code = reader.get(account.code_hash)
    if code is None:
        raise StorageError(f"code {account.code_hash.hex()} missing from state")
    return code


def storage_at(reader: KeyValueReader, state_root: Hash32, address: Address, slot: int) -> int:
    """The value of storage ``slot`` of the account at ``address`` (0 if never written)."""
    account = account_at(reader, state_root, address)
    raw = trie_get(reader, account.storage_root, keccak(slot.to_bytes(32, "big")))
    if raw is None:
        return 0
    return int.from_bytes(enc.as_bytes(enc.decode(raw), "storage value"), "big")
