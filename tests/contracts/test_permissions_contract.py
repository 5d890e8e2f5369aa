"""The Permissions system contract executed through chain.execution from a genesis state built
by contracts.permissions: only active governance changes roles, the last governance account
cannot be removed or frozen, every change emits its event."""

from __future__ import annotations

import dataclasses
import os

import pytest
from eth_abi.abi import decode
from eth_utils.abi import function_signature_to_4byte_selector

from chain.crypto import PrivateKey
from chain.execution import AccountAlloc, BlockContext, call, execute_block, genesis_state
from chain.genesis import GenesisAccount
from chain.primitives import Address, Hash32
from chain.types import Receipt, Transaction
from contracts.artifacts import load_artifact
from contracts.permissions import (
    AUDITOR,
    DEPLOYER,
    FROZEN,
    FROZEN_TOPIC,
    GOVERNANCE,
    GOVERNANCE_COUNT_SLOT,
    PERMISSIONS_ADDRESS,
    ROLES_CHANGED_TOPIC,
    SENDER,
    freeze_call,
    genesis_storage,
    governance_count_call,
    grant_call,
    permissions_contract,
    revoke_call,
    role_bits,
    role_names,
    roles_call,
    roles_slot,
    unfreeze_call,
)

CHAIN_ID = 9
PROPOSER = Address(bytes(20))


def _error(signature: str) -> bytes:
    return function_signature_to_4byte_selector(signature)


NOT_GOVERNANCE = _error("NotGovernance(address)")
LAST_GOVERNANCE = _error("LastGovernance()")
INVALID_ROLES = _error("InvalidRoles(uint256)")


def _topic(address: Address) -> Hash32:
    return Hash32(bytes(12) + bytes(address))


class Chain:
    """A state holding the Permissions contract with three accounts' genesis roles."""

    def __init__(self) -> None:
        self.admin, self.member, self.outsider = (PrivateKey.generate() for _ in range(3))
        accounts = [
            GenesisAccount(address=self.address(self.admin), roles=frozenset({"governance"})),
            GenesisAccount(address=self.address(self.member), roles=frozenset({"sender"})),
        ]
        contract = permissions_contract(accounts)
        update = genesis_state(
            {contract.address: AccountAlloc(code=contract.code, storage=genesis_storage(accounts))}
        )
        self.store: dict[bytes, bytes] = dict(update.writes)
        self.root = update.state_root
        self.height = 0

    @staticmethod
    def address(key: PrivateKey) -> Address:
        return Address(key.public_key.address)

    def context(self) -> BlockContext:
        return BlockContext(
            chain_id=CHAIN_ID,
            height=self.height + 1,
            timestamp_ms=1_700_000_000_000 + self.height,
            proposer=PROPOSER,
        )

    def send(self, key: PrivateKey, data: bytes) -> Receipt:
        unsigned = Transaction(
            chain_id=CHAIN_ID,
            nonce=Hash32(os.urandom(32)),
            block_limit=100,
            to=PERMISSIONS_ADDRESS,
            value=0,
            data=data,
            gas_limit=500_000,
            public_key=key.public_key.to_bytes(),
        )
        tx = dataclasses.replace(unsigned, signature=key.sign(unsigned.sign_bytes()))
        result = execute_block(self.store, self.root, self.context(), [tx])
        self.store.update(result.writes)
        self.root = result.state_root
        self.height += 1
        (receipt,) = result.receipts
        return receipt

    def read(self, data: bytes) -> int:
        result = call(
            self.store,
            self.root,
            self.context(),
            sender=PROPOSER,
            to=PERMISSIONS_ADDRESS,
            data=data,
        )
        assert result.success
        (value,) = decode(["uint256"], result.output)
        return int(value)

    def roles(self, key: PrivateKey) -> int:
        return self.read(roles_call(self.address(key)))

    def governance_count(self) -> int:
        return self.read(governance_count_call())


def _reverted_with(receipt: Receipt, selector: bytes) -> None:
    assert receipt.status == 0
    assert receipt.output[:4] == selector
    assert receipt.logs == ()


@pytest.fixture
def chain() -> Chain:
    return Chain()


def test_genesis_storage_is_what_the_getters_answer(chain: Chain) -> None:
    assert chain.roles(chain.admin) == GOVERNANCE
    assert chain.roles(chain.member) == SENDER
    assert chain.roles(chain.outsider) == 0
    assert chain.governance_count() == 1
    account = Chain.address(chain.admin)
    storage = genesis_storage([GenesisAccount(address=account, roles=frozenset({"governance"}))])
    assert storage == {roles_slot(account): GOVERNANCE, GOVERNANCE_COUNT_SLOT: 1}
    code = load_artifact("Permissions").deployed_bytecode
    assert permissions_contract([]).code == code


def test_role_names_and_bits_round_trip() -> None:
    names = frozenset({"sender", "deployer", "auditor"})
    assert role_bits(names) == SENDER | DEPLOYER | AUDITOR
    assert role_names(role_bits(names) | FROZEN) == names


def test_only_governance_grants_and_revokes(chain: Chain) -> None:
    outsider = Chain.address(chain.outsider)
    _reverted_with(chain.send(chain.member, grant_call(outsider, SENDER)), NOT_GOVERNANCE)
    _reverted_with(chain.send(chain.outsider, grant_call(outsider, SENDER)), NOT_GOVERNANCE)
    assert chain.roles(chain.outsider) == 0

    receipt = chain.send(chain.admin, grant_call(outsider, SENDER | DEPLOYER))
    assert receipt.status == 1
    (log,) = receipt.logs
    assert log.address == PERMISSIONS_ADDRESS
    assert log.topics == (
        ROLES_CHANGED_TOPIC,
        _topic(outsider),
        _topic(Chain.address(chain.admin)),
    )
    assert decode(["uint256"], log.data) == (SENDER | DEPLOYER,)
    assert chain.roles(chain.outsider) == SENDER | DEPLOYER

    _reverted_with(chain.send(chain.member, revoke_call(outsider, DEPLOYER)), NOT_GOVERNANCE)
    assert chain.send(chain.admin, revoke_call(outsider, DEPLOYER)).status == 1
    assert chain.roles(chain.outsider) == SENDER


def test_frozen_bit_and_empty_masks_are_not_roles(chain: Chain) -> None:
    member = Chain.address(chain.member)
    _reverted_with(chain.send(chain.admin, grant_call(member, FROZEN)), INVALID_ROLES)
    _reverted_with(chain.send(chain.admin, grant_call(member, 0)), INVALID_ROLES)
    _reverted_with(chain.send(chain.admin, revoke_call(member, 1 << 40)), INVALID_ROLES)
    assert chain.roles(chain.member) == SENDER


def test_last_governance_cannot_be_removed_or_frozen(chain: Chain) -> None:
    admin, member = Chain.address(chain.admin), Chain.address(chain.member)
    _reverted_with(chain.send(chain.admin, revoke_call(admin, GOVERNANCE)), LAST_GOVERNANCE)
    _reverted_with(chain.send(chain.admin, freeze_call(admin)), LAST_GOVERNANCE)
    assert chain.roles(chain.admin) == GOVERNANCE

    assert chain.send(chain.admin, grant_call(member, GOVERNANCE)).status == 1
    assert chain.governance_count() == 2
    # With a second governance account the first may step down.
    assert chain.send(chain.admin, revoke_call(admin, GOVERNANCE)).status == 1
    assert chain.governance_count() == 1
    _reverted_with(chain.send(chain.admin, grant_call(admin, GOVERNANCE)), NOT_GOVERNANCE)
    _reverted_with(chain.send(chain.member, revoke_call(member, GOVERNANCE)), LAST_GOVERNANCE)


def test_freeze_and_unfreeze(chain: Chain) -> None:
    admin, member = Chain.address(chain.admin), Chain.address(chain.member)
    _reverted_with(chain.send(chain.member, freeze_call(member)), NOT_GOVERNANCE)

    receipt = chain.send(chain.admin, freeze_call(member))
    assert receipt.status == 1
    (log,) = receipt.logs
    assert log.topics == (FROZEN_TOPIC, _topic(member), _topic(admin))
    assert decode(["bool"], log.data) == (True,)
    assert chain.roles(chain.member) == SENDER | FROZEN

    receipt = chain.send(chain.admin, unfreeze_call(member))
    assert receipt.status == 1
    assert decode(["bool"], receipt.logs[0].data) == (False,)
    assert chain.roles(chain.member) == SENDER


def test_a_frozen_governance_account_cannot_act(chain: Chain) -> None:
    admin, member = Chain.address(chain.admin), Chain.address(chain.member)
    assert chain.send(chain.admin, grant_call(member, GOVERNANCE)).status == 1
    assert chain.send(chain.member, freeze_call(admin)).status == 1
    assert chain.governance_count() == 1
    _reverted_with(chain.send(chain.admin, unfreeze_call(admin)), NOT_GOVERNANCE)
    _reverted_with(chain.send(chain.admin, grant_call(admin, SENDER)), NOT_GOVERNANCE)
    # Unfreezing restores its governance and the count.
    assert chain.send(chain.member, unfreeze_call(admin)).status == 1
    assert chain.governance_count() == 2
    assert chain.send(chain.admin, grant_call(admin, SENDER)).status == 1
