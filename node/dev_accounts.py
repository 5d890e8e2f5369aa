"""The accounts a dev chain's node holds unlocked, as Hardhat and anvil do.

A dev chain (``lianxin dev``, ``lianxin init --dev``) writes ``dev_accounts_dir = "keys"`` into
its ``node.toml``; only then does the node open the keystores of that folder, with the
validator's keystore password, and sign with SM2 on the accounts' behalf
(``eth_sendTransaction``, ``eth_signTransaction``, ``eth_sign``, ``personal_sign``,
``eth_signTypedData_v4``). A chain with several validators refuses the setting at start-up,
and a node without it answers those methods with a clear error: on a real chain keys stay
with their owners, who sign locally and send ``eth_sendRawTransaction``.

Opening a keystore takes about two seconds (PBKDF2-HMAC-SM3), so a key is decrypted on a
thread of its own the first time the node signs for its account, and kept; ``eth_accounts``
answers at once from the addresses the keystores name in clear. A node that never signs never
spends that time (``lianxin dev`` starts the registry right after the node).

What the signatures are: SM2 (GB/T 32918, default signer ID), DER-encoded, by the account's
key, over

- ``eth_sign`` / ``personal_sign``: the EIP-191 message ``"\\x19Ethereum Signed Message:\\n"
  + len(message) + message``;
- ``eth_signTypedData_v4``: the 32-byte EIP-712 digest of the typed data.

They verify under the account's public key (the ``senderPublicKey`` of any transaction it
sent) and, on chain, with the SM2 verify precompile; Ethereum's ``ecrecover`` cannot recover
an SM2 signer. See docs/ethereum-compat.md.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from chain.crypto import PrivateKey
from chain.primitives import Address, Hash32
from chain.types import Transaction
from chain.validation import sign_transaction
from node.chain_dir import DEV_ACCOUNTS, keystore_address, load_key
from node.config import ConfigError

MAX_DEV_ACCOUNTS = 64
"""Most keystores a dev node opens from its ``dev_accounts_dir``."""
BLOCK_LIMIT_WINDOW = 500
"""A transaction the node signs stays valid for this many blocks after the head."""
EIP191_PREFIX = b"\x19Ethereum Signed Message:\n"


class DevAccountsError(ConfigError):
    """Dev accounts that cannot be held: a chain that is not a single-validator dev chain, or
    a keys folder that cannot be read."""


@dataclass(frozen=True)
class DevAccount:
    """A dev account the node holds."""

    name: str
    """The keystore's file name without ``.json``."""
    address: Address
    """The account's address (named in clear by the keystore)."""
    keystore: Path
    """Its SM4 keystore."""


def _order(path: Path) -> tuple[int, str]:
    """The dev chain's own accounts first, in their fixed order (``admin`` holds every role,
    so clients that sign with the first account can do anything), then the others by name."""
    names = list(DEV_ACCOUNTS)
    name = path.stem
    return (names.index(name) if name in names else len(names), name)


def find_dev_accounts(folder: Path) -> list[DevAccount]:
    """The keystores of ``folder``, in the order ``eth_accounts`` lists them."""
    try:
        paths = sorted(folder.glob("*.json"), key=_order)
    except OSError as exc:
        raise DevAccountsError(f"cannot read dev_accounts_dir {folder}: {exc}") from exc
    if len(paths) > MAX_DEV_ACCOUNTS:
        raise DevAccountsError(f"{folder}: more than {MAX_DEV_ACCOUNTS} keystores")
    return [DevAccount(path.stem, keystore_address(path), path) for path in paths]


class DevAccounts:
    """Unlocked SM2 keys of a dev chain, by address."""

    def __init__(self, accounts: Sequence[DevAccount], password: bytes) -> None:
        """Nothing is decrypted before it is needed."""
        self.accounts = tuple(accounts)
        self._by_address = {account.address: account for account in self.accounts}
        self._password = password
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="lianxin-dev-keys")
        self._keys: dict[Address, Future[PrivateKey]] = {}

    @classmethod
    def open(cls, folder: Path, password: bytes, *, validators: int) -> DevAccounts:
        """The accounts of a dev chain's keys ``folder``; refused unless the chain has a
        single validator (a network of validators is never a dev chain)."""
        if validators != 1:
            raise DevAccountsError(
                f"dev_accounts_dir is for a single-validator dev chain; this chain has "
                f"{validators} validators. Remove it from node.toml: on a real chain "
                "transactions are signed by their senders"
            )
        return cls(find_dev_accounts(folder), password)

    @property
    def addresses(self) -> list[Address]:
        """The accounts' addresses, in ``eth_accounts`` order."""
        return [account.address for account in self.accounts]

    def holds(self, address: Address) -> bool:
        """Whether the node signs for ``address``."""
        return address in self._by_address

    async def key(self, address: Address) -> PrivateKey:
        """The unlocked key of ``address``, its keystore opened off the event loop the first
        time; raises ChainError if it does not open with the password."""
        future = self._keys.get(address)
        if future is None:
            keystore = self._by_address[address].keystore
            future = self._pool.submit(load_key, keystore, self._password)
            self._keys[address] = future
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        """Stop opening keystores."""
        self._pool.shutdown(wait=False, cancel_futures=True)


def signed_transaction(
    key: PrivateKey,
    *,
    chain_id: int,
    head_height: int,
    to: Address | None,
    value: int,
    data: bytes,
    gas_limit: int,
) -> Transaction:
    """A transaction from ``key``'s account with a fresh random replay nonce, valid for
    :data:`BLOCK_LIMIT_WINDOW` blocks after ``head_height``, SM2-signed."""
    unsigned = Transaction(
        chain_id=chain_id,
        nonce=Hash32(secrets.token_bytes(32)),
        block_limit=head_height + BLOCK_LIMIT_WINDOW,
        to=to,
        value=value,
        data=data,
        gas_limit=gas_limit,
        public_key=key.public_key.to_bytes(),
    )
    return sign_transaction(unsigned, key)


def eip191_message(message: bytes) -> bytes:
    """What ``eth_sign`` and ``personal_sign`` sign: EIP-191 version ``E``."""
    return EIP191_PREFIX + str(len(message)).encode() + message
