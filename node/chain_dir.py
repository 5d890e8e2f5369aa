"""Create a chain directory: genesis, encrypted validator and account keystores, node config.

Layout of a directory made by :func:`init_chain_dir`::

    genesis.toml        the chain's genesis (chain id, validators, accounts and roles, and the
                        Permissions system contract whose storage holds those roles)
    node.toml           this node's configuration (data dir, RPC address, keystore path)
    validator.json      the validator's SM2 key in an SM4 keystore
    keys/<name>.json    account keys in SM4 keystores (dev accounts with --dev)
    node/               LMDB data, created by the node on first start

With ``validators`` N > 1 the directory holds a local network of N validators instead of the
single node: ``genesis.toml``, ``keys/`` and the password file at the top, and one folder per
validator, ``node-0`` … ``node-{N-1}``, each with its ``validator.json``, a ``node.toml``
(distinct RPC and p2p ports on 127.0.0.1, the other validators as peers) and its data. Its
genesis deploys the ValidatorGovernance system contract (validator changes by vote) and lets
each validator's account send. Observer folders may follow the validators' (``node-N`` …):
nodes with a key outside the validator set that follow the chain without voting.

Keys are never written in clear. The keystore password comes from the caller; a dev chain
keeps a generated password in ``keystore-password`` (mode 0600) so that it starts without a
prompt — acceptable for a local dev chain only, which the file's name and mode make plain.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from chain.crypto import PrivateKey
from chain.crypto.keystore import decrypt_keystore, encrypt_keystore
from chain.errors import ChainError
from chain.primitives import Address

if TYPE_CHECKING:
    from chain.genesis import Genesis

DEV_ACCOUNTS: dict[str, frozenset[str]] = {
    "admin": frozenset({"governance", "deployer", "sender", "issuer", "auditor"}),
    "dept-a": frozenset({"deployer", "sender", "issuer"}),
    "dept-b": frozenset({"deployer", "sender"}),
}
"""Dev accounts and their roles; every dev account is funded and may deploy and send (as
every account of Hardhat's or anvil's dev chain may), ``admin`` holds every role."""

DEV_BALANCE = 10**24
DEV_PASSWORD_FILE = "keystore-password"
DEFAULT_CHAIN_ID = 20_261_126
DEFAULT_BLOCK_GAS_LIMIT = 60_000_000


class ChainDirError(ChainError):
    """A chain directory that cannot be created or read."""


@dataclass(frozen=True)
class ChainDir:
    """Paths of a chain directory."""

    root: Path
    """The directory itself."""

    @property
    def genesis(self) -> Path:
        """The genesis TOML file."""
        return self.root / "genesis.toml"

    @property
    def config(self) -> Path:
        """The node configuration TOML file."""
        return self.root / "node.toml"

    @property
    def validator_keystore(self) -> Path:
        """The validator's keystore."""
        return self.root / "validator.json"

    @property
    def keys(self) -> Path:
        """The folder of account keystores."""
        return self.root / "keys"

    @property
    def password_file(self) -> Path:
        """Where a dev chain keeps its generated keystore password."""
        return self.root / DEV_PASSWORD_FILE

    def keystore(self, name: str) -> Path:
        """The keystore file of the account called ``name``."""
        if not name or "/" in name or name.startswith("."):
            raise ChainDirError(f"invalid key name {name!r}")
        return self.keys / f"{name}.json"

    def node(self, index: int) -> Path:
        """The folder of validator ``index`` in a multi-validator directory."""
        return self.root / f"node-{index}"

    def node_dirs(self) -> list[Path]:
        """The validator folders of a multi-validator directory, in index order."""
        found = []
        index = 0
        while (self.node(index) / "node.toml").exists():
            found.append(self.node(index))
            index += 1
        return found

    def exists(self) -> bool:
        """Whether the directory already holds a chain."""
        return self.genesis.exists()


@dataclass(frozen=True)
class InitResult:
    """What :func:`init_chain_dir` created."""

    directory: ChainDir
    """The chain directory."""
    genesis: Genesis
    """The genesis written to ``genesis.toml``."""
    accounts: dict[str, Address]
    """Account name → address of every keystore written under ``keys/``."""
    nodes: tuple[Path, ...] = ()
    """The validator folders of a multi-validator directory (empty for a single node)."""


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file readable by its owner only, durably."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def save_key(path: Path, key: PrivateKey, password: bytes, *, iterations: int) -> None:
    """Store ``key`` in an SM4 keystore at ``path`` (refusing to overwrite)."""
    if path.exists():
        raise ChainDirError(f"{path} exists; refusing to overwrite a key")
    write_private(path, encrypt_keystore(key, password, iterations=iterations))


def load_key(path: Path, password: bytes) -> PrivateKey:
    """Decrypt the keystore at ``path``; raises InvalidKey on a wrong password."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ChainDirError(f"cannot read keystore {path}: {exc}") from exc
    return decrypt_keystore(data, password)


def keystore_address(path: Path) -> Address:
    """The address a keystore names in clear (no password needed)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        return Address(bytes.fromhex(document["address"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ChainDirError(f"{path} is not a keystore: {exc}") from exc


def node_config_text(*, rpc_port: int, password_file: str | None, dev: bool = False) -> str:
    """The ``node.toml`` of a fresh chain directory (paths relative to it); a dev chain's
    node holds its dev accounts unlocked (``dev_accounts_dir``)."""
    lines = [
        "# lianxin node configuration; paths are relative to this file.",
        'data_dir = "node"',
        'genesis = "genesis.toml"',
        'validator_keystore = "validator.json"',
        'rpc_host = "127.0.0.1"',
        f"rpc_port = {rpc_port}",
        "block_interval_ms = 0",
        "max_block_txs = 500",
    ]
    if password_file is not None:
        lines.append(f'validator_password_file = "{password_file}"')
    if dev:
        lines.append('dev_accounts_dir = "keys"')
    return "\n".join(lines) + "\n"


NET_TIMEOUTS = {
    "timeout_propose_ms": 1000,
    "timeout_prevote_ms": 500,
    "timeout_precommit_ms": 500,
    "timeout_delta_ms": 250,
    "commit_delay_ms": 100,
    "gossip_interval_ms": 300,
}
"""Consensus timings written into the node.toml files of a local network (one host)."""


def net_node_config_text(
    *,
    rpc_port: int,
    p2p_port: int,
    peers: Sequence[tuple[str, bytes, str, int]],
    password_file: str | None,
    observer_keys: frozenset[bytes] = frozenset(),
    host: str = "127.0.0.1",
) -> str:
    """The ``node.toml`` of one validator of a network; the node listens on ``host`` (RPC and
    p2p); ``peers`` holds (name, public key, host, p2p port) of the others, the addresses they
    advertise; those in ``observer_keys`` are marked observers (allowed to connect without
    being validators)."""
    lines = [
        "# lianxin validator node configuration; paths are relative to this file.",
        'data_dir = "data"',
        'genesis = "../genesis.toml"',
        'validator_keystore = "validator.json"',
        f'rpc_host = "{host}"',
        f"rpc_port = {rpc_port}",
        f'p2p_host = "{host}"',
        f"p2p_port = {p2p_port}",
        "max_block_txs = 500",
    ]
    lines += [f"{name} = {value}" for name, value in NET_TIMEOUTS.items()]
    if password_file is not None:
        lines.append(f'validator_password_file = "../{password_file}"')
    for name, public_key, peer_host, port in peers:
        lines += [
            "",
            "[[peers]]",
            f'name = "{name}"',
            f'public_key = "{public_key.hex()}"',
            f'host = "{peer_host}"',
            f"port = {port}",
        ]
        if public_key in observer_keys:
            lines.append("observer = true")
    return "\n".join(lines) + "\n"


def init_chain_dir(
    root: Path,
    *,
    password: bytes | None,
    dev: bool,
    chain_id: int = DEFAULT_CHAIN_ID,
    rpc_port: int = 8545,
    timestamp_ms: int,
    iterations: int = 300_000,
    validators: int = 1,
    p2p_port: int = 26656,
    observers: int = 0,
    hosts: Sequence[str] | None = None,
) -> InitResult:
    """Create a chain in ``root``: a single validator node, or with ``validators`` N > 1 a
    local network of N validator folders (RPC ports ``rpc_port + i``, p2p ports
    ``p2p_port + i``). With ``dev``, also create funded dev accounts holding every role, and
    (if ``password`` is None) a generated password file. The genesis deploys the Permissions
    system contract with the accounts' roles in its storage, so governance can change them
    later. A network's genesis also deploys the ValidatorGovernance system contract listing
    the validators, and grants each validator's account (its key's address) the sender role,
    so that validators can propose and vote on validator changes. ``observers`` more folders
    (after the validators') hold nodes with a key outside the validator set: they follow the
    chain over p2p and serve JSON-RPC without voting. Raises ChainDirError if ``root``
    already holds a chain. With ``hosts`` (one address per node), node ``i`` listens on
    ``hosts[i]`` and is dialled there, every node on the same ports: one node per host."""
    # The genesis and the system contracts (RLP, ABI) are needed to create a chain only, not
    # by the commands that read a chain directory (node start, net status, keys list ...).
    from chain.genesis import Genesis, GenesisAccount, GenesisValidator, genesis_to_toml
    from contracts.permissions import permissions_contract
    from contracts.validators import validator_governance_contract

    if validators < 1:
        raise ChainDirError("validators must be at least 1")
    if observers < 0 or (observers and validators == 1):
        raise ChainDirError("observers need a network of several validators")
    directory = ChainDir(root)
    if directory.exists():
        raise ChainDirError(
            f"{root} already holds a chain (genesis.toml exists): start it with "
            f"`lianxin node start --dir {root}`, or give `init` another directory"
        )
    password_file: str | None = None
    if password is None:
        if not dev:
            raise ChainDirError("a keystore password is required (prompt, env var or file)")
        password = secrets.token_urlsafe(24).encode()
        write_private(directory.password_file, password + b"\n")
        password_file = DEV_PASSWORD_FILE
    if validators == 1:
        validator_keys = [PrivateKey.generate()]
        save_key(directory.validator_keystore, validator_keys[0], password, iterations=iterations)
    else:
        validator_keys = [PrivateKey.generate() for _ in range(validators + observers)]
        for index, key in enumerate(validator_keys):
            path = directory.node(index) / "validator.json"
            save_key(path, key, password, iterations=iterations)
    accounts: dict[str, Address] = {}
    genesis_accounts = []
    names = DEV_ACCOUNTS if dev else {"admin": DEV_ACCOUNTS["admin"]}
    for name, roles in names.items():
        key = PrivateKey.generate()
        save_key(directory.keystore(name), key, password, iterations=iterations)
        accounts[name] = key.public_key.address
        genesis_accounts.append(
            GenesisAccount(
                address=key.public_key.address,
                roles=roles,
                balance=DEV_BALANCE if dev else 0,
                public_key=key.public_key.to_bytes(),
            )
        )
    genesis_validators = tuple(
        GenesisValidator(name=f"validator-{i}", public_key=k.public_key.to_bytes(), power=1)
        for i, k in enumerate(validator_keys[:validators])
    )
    system_contracts = []
    if validators > 1:
        genesis_accounts += [
            GenesisAccount(
                address=v.address, roles=frozenset({"sender"}), balance=0, public_key=v.public_key
            )
            for v in genesis_validators
        ]
        system_contracts.append(validator_governance_contract(genesis_validators))
    genesis = Genesis(
        chain_id=chain_id,
        timestamp_ms=timestamp_ms,
        validators=genesis_validators,
        accounts=tuple(genesis_accounts),
        system_contracts=(permissions_contract(genesis_accounts), *system_contracts),
        block_gas_limit=DEFAULT_BLOCK_GAS_LIMIT,
    )
    directory.genesis.write_text(genesis_to_toml(genesis), encoding="utf-8")
    if validators == 1:
        directory.config.write_text(
            node_config_text(rpc_port=rpc_port, password_file=password_file, dev=dev),
            encoding="utf-8",
        )
        return InitResult(directory=directory, genesis=genesis, accounts=accounts)
    if hosts is not None and len(hosts) != validators + observers:
        raise ChainDirError(f"{len(hosts)} hosts given for {validators + observers} nodes")

    def address(index: int) -> tuple[str, int, int]:
        if hosts is None:
            return "127.0.0.1", rpc_port + index, p2p_port + index
        return hosts[index], rpc_port, p2p_port

    for index in range(validators + observers):
        peers = [
            (f"node-{other}", key.public_key.to_bytes(), address(other)[0], address(other)[2])
            for other, key in enumerate(validator_keys)
            if other != index
        ]
        host, node_rpc_port, node_p2p_port = address(index)
        (directory.node(index) / "node.toml").write_text(
            net_node_config_text(
                host=host,
                rpc_port=node_rpc_port,
                p2p_port=node_p2p_port,
                peers=peers,
                password_file=password_file,
                observer_keys=frozenset(
                    k.public_key.to_bytes() for k in validator_keys[validators:]
                ),
            ),
            encoding="utf-8",
        )
    nodes = tuple(directory.node(i) for i in range(validators + observers))
    return InitResult(directory=directory, genesis=genesis, accounts=accounts, nodes=nodes)
