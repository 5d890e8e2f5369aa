"""Permissioned accounts end to end on an in-process node whose genesis comes from
``lianxin init``: the Permissions contract's storage decides admission, governance changes it
through ``lianxin accounts``, and a transaction refused by permission never enters a block."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from node_harness import RpcClient, RpcFailure, make_config, raw_hex, send_and_wait, signed_tx
from typer.testing import CliRunner

from chain.crypto import PrivateKey
from chain.genesis import Genesis, SystemContract, genesis_to_toml, parse_genesis
from chain.primitives import Address, Hash32
from chain.types import Transaction
from contracts.artifacts import load_artifact
from contracts.permissions import (
    CONTRACT_NAME,
    DEPLOYER,
    FROZEN,
    GOVERNANCE,
    ISSUER,
    PERMISSIONS_ADDRESS,
    SENDER,
    freeze_call,
    genesis_storage,
    role_bits,
    roles_slot,
)
from node.chain_dir import ChainDir, init_chain_dir, load_key
from node.cli import app
from node.daemon import Node
from node.permissions import (
    ContractRoles,
    PermissionsGenesisError,
    StaticRoles,
    check_genesis_permissions,
    role_reader,
)
from node.rpc.errors import ErrorCode

runner = CliRunner()
TARGET = Address(b"\x42" * 20)


@dataclasses.dataclass(frozen=True)
class InitChain:
    """A chain directory made by ``init_chain_dir`` and its decrypted keys."""

    directory: Path
    genesis: Genesis
    validator: PrivateKey
    admin: PrivateKey
    """Every role, governance included."""
    dept_a: PrivateKey
    """sender, deployer, issuer."""
    dept_b: PrivateKey
    """sender only."""
    outsider: PrivateKey
    """Not in genesis."""


@pytest.fixture
def chain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> InitChain:
    monkeypatch.delenv("LIANXIN_KEYSTORE_PASSWORD", raising=False)
    result = init_chain_dir(
        tmp_path / "chain",
        password=None,
        dev=True,
        timestamp_ms=1_700_000_000_000,
        iterations=1_000,
    )
    directory = ChainDir(tmp_path / "chain")
    password = directory.password_file.read_bytes().strip()
    # The node reads the genesis from the file, as `lianxin node start` does.
    genesis = parse_genesis(directory.genesis.read_text(encoding="utf-8"))
    assert genesis == result.genesis

    def key(name: str) -> PrivateKey:
        return load_key(directory.keystore(name), password)

    return InitChain(
        directory=directory.root,
        genesis=genesis,
        validator=load_key(directory.validator_keystore, password),
        admin=key("admin"),
        dept_a=key("dept-a"),
        dept_b=key("dept-b"),
        outsider=PrivateKey.generate(),
    )


def _address(key: PrivateKey) -> Address:
    return Address(key.public_key.address)


def test_init_genesis_holds_the_contract_with_the_accounts_roles(chain: InitChain) -> None:
    (contract,) = chain.genesis.system_contracts
    assert contract.name == CONTRACT_NAME
    assert contract.address == PERMISSIONS_ADDRESS
    assert contract.code == load_artifact(CONTRACT_NAME).deployed_bytecode
    storage = {int.from_bytes(s, "big"): int.from_bytes(v, "big") for s, v in contract.storage}
    assert storage == genesis_storage(chain.genesis.accounts)
    assert storage[roles_slot(_address(chain.dept_b))] == SENDER | DEPLOYER
    assert storage[roles_slot(_address(chain.admin))] & GOVERNANCE
    check_genesis_permissions(chain.genesis)


def _with_contract(genesis: Genesis, contract: SystemContract) -> Genesis:
    return dataclasses.replace(genesis, system_contracts=(contract,))


def test_a_genesis_whose_contract_disagrees_is_refused(chain: InitChain) -> None:
    (contract,) = chain.genesis.system_contracts
    # dept-b listed with "sender" and "deployer" but the contract storage grants it "issuer" too.
    slot = Hash32(roles_slot(_address(chain.dept_b)).to_bytes(32, "big"))
    tampered_storage = tuple(
        (s, Hash32((SENDER | DEPLOYER | ISSUER).to_bytes(32, "big")) if s == slot else v)
        for s, v in contract.storage
    )
    tampered = _with_contract(
        chain.genesis, dataclasses.replace(contract, storage=tampered_storage)
    )
    with pytest.raises(PermissionsGenesisError, match="disagrees with the roles"):
        check_genesis_permissions(tampered)
    # Through the TOML file, as the daemon reads it.
    with pytest.raises(PermissionsGenesisError):
        check_genesis_permissions(parse_genesis(genesis_to_toml(tampered)))
    moved = _with_contract(
        chain.genesis, dataclasses.replace(contract, address=Address(b"\x0a" * 20))
    )
    with pytest.raises(PermissionsGenesisError, match="must live at"):
        check_genesis_permissions(moved)
    empty = _with_contract(chain.genesis, dataclasses.replace(contract, storage=()))
    with pytest.raises(PermissionsGenesisError):
        check_genesis_permissions(empty)


def test_node_refuses_to_start_on_a_disagreeing_genesis(chain: InitChain, tmp_path: Path) -> None:
    accounts = tuple(
        dataclasses.replace(a, roles=a.roles | {"issuer"})
        if a.roles == {"sender", "deployer"}
        else a
        for a in chain.genesis.accounts
    )
    # The accounts changed after the contract's storage was computed.
    genesis = dataclasses.replace(chain.genesis, accounts=accounts)

    async def run() -> None:
        node = Node(make_config(tmp_path / "data"), genesis, chain.validator)
        try:
            with pytest.raises(PermissionsGenesisError):
                await node.start()
        finally:
            await node.stop()

    asyncio.run(run())


def test_static_permissions_without_the_contract(chain: InitChain) -> None:
    static = dataclasses.replace(chain.genesis, system_contracts=())
    reader = role_reader(static, _NoLedger())
    assert isinstance(reader, StaticRoles)
    assert reader.roles(_address(chain.dept_a)) == role_bits({"sender", "deployer", "issuer"})
    assert reader.roles(_address(chain.outsider)) == 0
    assert isinstance(role_reader(chain.genesis, _NoLedger()), ContractRoles)


class _NoLedger:
    """A storage reader that must not be read (static permissions never touch state)."""

    @property
    def head(self) -> Any:
        raise AssertionError("static permissions read no state")

    def storage(self, header: Any, address: Address, slot: int) -> int:
        raise AssertionError("static permissions read no state")


async def _cli(*args: str) -> tuple[int, str]:
    """Run ``lianxin`` on a worker thread: the node answers on this thread's event loop."""
    result = await asyncio.to_thread(runner.invoke, app, list(args), catch_exceptions=False)
    return result.exit_code, result.output


async def _refused(client: RpcClient, tx: Transaction) -> dict[str, Any]:
    with pytest.raises(RpcFailure) as caught:
        await client.call("eth_sendRawTransaction", raw_hex(tx))
    assert caught.value.code == ErrorCode.TX_NOT_PERMITTED
    data: dict[str, Any] = caught.value.data
    return data


def _chain_id_tx(
    chain: InitChain, key: PrivateKey, *, to: Address | None, data: bytes
) -> Transaction:
    return signed_tx(key, to=to, data=data, chain_id=chain.genesis.chain_id)


async def _start(chain: InitChain, tmp_path: Path) -> tuple[Node, int]:
    node = Node(make_config(tmp_path / "data"), chain.genesis, chain.validator)
    return node, await node.start()


def test_admission_follows_governance(chain: InitChain, tmp_path: Path) -> None:
    async def run() -> None:
        node, port = await _start(chain, tmp_path)
        url = f"http://127.0.0.1:{port}/"
        cli_target = ["--dir", str(chain.directory), "--rpc", url]
        try:
            async with aiohttp.ClientSession() as session:
                client = RpcClient(session, url)
                counter = load_artifact("Counter").bytecode + (0).to_bytes(32, "big")

                # An account without SENDER is refused.
                data = await _refused(
                    client, _chain_id_tx(chain, chain.outsider, to=TARGET, data=b"")
                )
                assert data["refusal"] == "NotPermitted" and data["role"] == "sender"
                # Governance revokes dept-b's DEPLOYER: a sender without it cannot create a
                # contract.
                code, output = await _cli("accounts", "revoke", "dept-b", "deployer", *cli_target)
                assert code == 0, output
                data = await _refused(
                    client, _chain_id_tx(chain, chain.dept_b, to=None, data=counter)
                )
                assert data["role"] == "deployer"

                # Governance grants DEPLOYER: now it can.
                code, output = await _cli("accounts", "grant", "dept-b", "deployer", *cli_target)
                assert code == 0, output
                assert "grant" in output and "deployer" in output
                receipt = await send_and_wait(
                    client, _chain_id_tx(chain, chain.dept_b, to=None, data=counter)
                )
                assert receipt["status"] == "0x1"

                # Freeze: refused; unfreeze: accepted again.
                code, output = await _cli("accounts", "freeze", "dept-b", *cli_target, "--json")
                assert code == 0, output
                frozen = json.loads(output)
                assert frozen["ok"] and frozen["account"]["frozen"]
                data = await _refused(
                    client, _chain_id_tx(chain, chain.dept_b, to=TARGET, data=b"")
                )
                assert data["refusal"] == "AccountFrozen"
                code, output = await _cli("accounts", "unfreeze", "dept-b", *cli_target)
                assert code == 0, output
                receipt = await send_and_wait(
                    client, _chain_id_tx(chain, chain.dept_b, to=TARGET, data=b"")
                )
                assert receipt["status"] == "0x1"

                # Revoke: DEPLOYER is gone again.
                code, output = await _cli("accounts", "revoke", "dept-b", "deployer", *cli_target)
                assert code == 0, output
                await _refused(client, _chain_id_tx(chain, chain.dept_b, to=None, data=counter))

                # A key without GOVERNANCE: the transaction reverts and the CLI exits 1.
                outsider = "0x" + _address(chain.outsider).hex()
                code, output = await _cli(
                    "accounts", "grant", outsider, "sender", *cli_target, "--key", "dept-a"
                )
                assert code == 1
                assert "NotGovernance" in output
                # The last governance account cannot give up its role.
                code, output = await _cli("accounts", "revoke", "admin", "governance", *cli_target)
                assert code == 1
                assert "LastGovernance" in output
                # Bad input is a usage error, not a transaction.
                code, output = await _cli("accounts", "grant", "dept-b", "root", *cli_target)
                assert code == 2
                assert "unknown role" in output

                code, output = await _cli("accounts", "grant", outsider, "sender", *cli_target)
                assert code == 0, output
                receipt = await send_and_wait(
                    client, _chain_id_tx(chain, chain.outsider, to=TARGET, data=b"")
                )
                assert receipt["status"] == "0x1"

                code, output = await _cli("accounts", "list", *cli_target, "--json")
                assert code == 0, output
                listed = {entry["address"]: entry for entry in json.loads(output)}
                dept_b = listed["0x" + _address(chain.dept_b).hex()]
                assert dept_b == {
                    "address": "0x" + _address(chain.dept_b).hex(),
                    "name": "dept-b",
                    "roles": ["sender"],
                    "frozen": False,
                }
                assert listed[outsider]["roles"] == ["sender"]
                assert listed[outsider]["name"] is None
                assert "governance" in listed["0x" + _address(chain.admin).hex()]["roles"]
                code, output = await _cli("accounts", "list", *cli_target)
                assert code == 0 and "dept-b" in output
        finally:
            await node.stop()

    asyncio.run(run())


def test_a_pending_transaction_of_a_frozen_account_is_dropped(
    chain: InitChain, tmp_path: Path
) -> None:
    async def run() -> None:
        node, _ = await _start(chain, tmp_path)
        try:
            assert node.mempool is not None and node.ledger is not None
            freeze = _chain_id_tx(
                chain, chain.admin, to=PERMISSIONS_ADDRESS, data=freeze_call(_address(chain.dept_b))
            )
            pending = _chain_id_tx(chain, chain.dept_b, to=TARGET, data=b"")
            # Both admitted before the producer runs: dept-b is not frozen yet.
            node.mempool.submit(freeze.encode())
            node.mempool.submit(pending.encode())
            freeze_waiter = node.mempool.waiter(freeze.hash)
            pending_waiter = node.mempool.waiter(pending.hash)
            assert freeze_waiter is not None and pending_waiter is not None
            frozen_at = (await asyncio.wait_for(freeze_waiter, 10)).height
            assert frozen_at is not None
            outcome = await asyncio.wait_for(pending_waiter, 10)
            assert outcome.height is None
            assert outcome.reason.startswith("not permitted") and "frozen" in outcome.reason
            assert node.ledger.lookup_transaction(pending.hash) is None
            roles = node.ledger.storage(
                node.ledger.head, PERMISSIONS_ADDRESS, roles_slot(_address(chain.dept_b))
            )
            assert roles == SENDER | DEPLOYER | FROZEN
            assert len(node.mempool) == 0
        finally:
            await node.stop()

    asyncio.run(run())
