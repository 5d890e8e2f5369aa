"""Shared pieces of the node tests: a dev chain in a temporary directory, an in-process node,
a small JSON-RPC client, and signed transactions."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from eth_utils import function_signature_to_4byte_selector, keccak

from chain.crypto import PrivateKey
from chain.genesis import Genesis, GenesisAccount, GenesisValidator
from chain.primitives import Address, Hash32
from chain.types import Transaction
from chain.validation import sign_transaction
from node.config import NodeConfig
from node.daemon import Node
from node.ledger import Ledger
from node.mempool import Mempool

CHAIN_ID = 2024
ANCHOR_SELECTOR = function_signature_to_4byte_selector("anchor(bytes32)")
TOTAL_SELECTOR = function_signature_to_4byte_selector("total()")
ANCHORED_TOPIC = keccak(text="Anchored(bytes32,address,uint256)")


@dataclass(frozen=True)
class DevChain:
    """A genesis with one validator and accounts of each permission level."""

    genesis: Genesis
    validator: PrivateKey
    deployer: PrivateKey
    """Holds "sender" and "deployer"."""
    sender: PrivateKey
    """Holds "sender" only."""
    outsider: PrivateKey
    """Holds no role."""


def make_chain() -> DevChain:
    """Fresh keys and a genesis granting them their roles."""
    validator, deployer, sender, outsider = (PrivateKey.generate() for _ in range(4))
    genesis = Genesis(
        chain_id=CHAIN_ID,
        timestamp_ms=1_700_000_000_000,
        validators=(
            GenesisValidator(name="dev", public_key=validator.public_key.to_bytes(), power=1),
        ),
        accounts=(
            GenesisAccount(
                address=deployer.public_key.address,
                roles=frozenset({"sender", "deployer", "governance"}),
                balance=10**18,
            ),
            GenesisAccount(address=sender.public_key.address, roles=frozenset({"sender"})),
            GenesisAccount(address=outsider.public_key.address, roles=frozenset({"auditor"})),
        ),
        system_contracts=(),
        block_gas_limit=30_000_000,
    )
    return DevChain(genesis, validator, deployer, sender, outsider)


def make_config(data_dir: Path, **overrides: Any) -> NodeConfig:
    """A configuration on an ephemeral port (``genesis`` is passed to the node directly)."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "genesis": data_dir / "genesis.toml",
        "rpc_port": 0,
    }
    values.update(overrides)
    return NodeConfig(**values)


def signed_tx(
    key: PrivateKey,
    *,
    to: Address | None,
    data: bytes,
    block_limit: int = 500,
    gas_limit: int = 3_000_000,
    chain_id: int = CHAIN_ID,
    nonce: bytes | None = None,
    value: int = 0,
) -> Transaction:
    """A transaction signed by ``key``."""
    unsigned = Transaction(
        chain_id=chain_id,
        nonce=Hash32(nonce if nonce is not None else os.urandom(32)),
        block_limit=block_limit,
        to=to,
        value=value,
        data=data,
        gas_limit=gas_limit,
        public_key=key.public_key.to_bytes(),
    )
    return sign_transaction(unsigned, key)


def raw_hex(tx: Transaction) -> str:
    """The eth_sendRawTransaction parameter for ``tx``."""
    return "0x" + tx.encode().hex()


def anchor_call(root: bytes) -> bytes:
    """Call data of ``Anchor.anchor(root)``."""
    return ANCHOR_SELECTOR + root


class RpcFailure(Exception):
    """A JSON-RPC error object received from the node."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(f"{error.get('code')}: {error.get('message')}")
        self.code = error.get("code")
        self.message = error.get("message")
        self.data = error.get("data")


class RpcClient:
    """A minimal keep-alive JSON-RPC client."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session = session
        self.url = url
        self._next_id = 0

    async def post(self, body: bytes | str) -> tuple[int, Any]:
        """POST raw ``body``; returns (HTTP status, parsed JSON or None)."""
        async with self.session.post(
            self.url, data=body, headers={"Content-Type": "application/json"}
        ) as response:
            text = await response.read()
            return response.status, (json.loads(text) if text else None)

    async def call(self, method: str, *params: Any) -> Any:
        """Call ``method``; returns its result or raises RpcFailure."""
        self._next_id += 1
        request = {"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": list(params)}
        _, reply = await self.post(json.dumps(request))
        if "error" in reply:
            raise RpcFailure(reply["error"])
        return reply["result"]


@asynccontextmanager
async def running_node(
    chain: DevChain, config: NodeConfig
) -> AsyncIterator[tuple[Node, RpcClient]]:
    """Start a node in-process and yield it with a client; stop it afterwards."""
    node = Node(config, chain.genesis, chain.validator)
    port = await node.start()
    try:
        async with aiohttp.ClientSession() as session:
            yield node, RpcClient(session, f"http://127.0.0.1:{port}/")
    finally:
        await node.stop()


DEV_PASSWORD = b"dev password"
"""The keystore password of :func:`unlocked_dev_node`'s dev account."""


@asynccontextmanager
async def unlocked_dev_node(
    chain: DevChain, tmp_path: Path, **overrides: Any
) -> AsyncIterator[tuple[Node, RpcClient]]:
    """A dev node holding ``chain.deployer`` unlocked as its dev account ``admin`` (so
    ``eth_sendTransaction`` signs for it) that answers receipts at once; ``overrides`` are
    more configuration fields."""
    from node.chain_dir import save_key, write_private

    keys = tmp_path / "keys"
    save_key(keys / "admin.json", chain.deployer, DEV_PASSWORD, iterations=1024)
    write_private(tmp_path / "password", DEV_PASSWORD + b"\n")
    config = make_config(
        tmp_path,
        dev_accounts_dir=keys,
        validator_password_file=tmp_path / "password",
        receipt_wait_ms=0,
        **overrides,
    )
    async with running_node(chain, config) as (node, client):
        yield node, client


async def send_unlocked(client: RpcClient, request: dict[str, Any]) -> dict[str, Any]:
    """Send ``request`` with ``eth_sendTransaction`` and return its receipt, which must
    show success."""
    tx_hash = await client.call("eth_sendTransaction", request)
    receipt = await client.call("eth_getTransactionReceipt", tx_hash)
    assert receipt is not None and receipt["status"] == "0x1"
    return dict(receipt)


async def send_and_wait(client: RpcClient, tx: Transaction) -> dict[str, Any]:
    """Send ``tx`` and return its receipt (the node waits for the block)."""
    tx_hash = await client.call("eth_sendRawTransaction", raw_hex(tx))
    assert tx_hash == "0x" + tx.hash.hex()
    for _ in range(50):
        receipt = await client.call("eth_getTransactionReceipt", tx_hash)
        if receipt is not None:
            return receipt
        # A node configured not to wait for receipts answers at once; give the block time.
        await asyncio.sleep(0.02)
    raise AssertionError(f"no receipt for {tx_hash}")


def ledger_mempool(ledger: Ledger) -> Mempool:
    """A pool of 1,000 transactions admitted against ``ledger``'s head, as the dev node
    makes it."""
    return Mempool(
        ledger.rules,
        ledger.permissions_at(ledger.head),
        capacity=1_000,
        nonce_committed=ledger.nonce_committed,
        next_height=lambda: ledger.head.height + 1,
    )
