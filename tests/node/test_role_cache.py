"""Roles read at the head are kept while the Permissions contract's storage stays the same:
a block that does not touch it costs admission no new role read, and one that changes a role
is seen at once (by the account it changed and by every other)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from chain.crypto import PrivateKey
from chain.crypto.keystore import decrypt_keystore
from chain.primitives import Address, Hash32
from chain.types import Header, Transaction
from chain.validation import sign_transaction
from contracts.permissions import DEPLOYER, PERMISSIONS_ADDRESS, SENDER, grant_call, revoke_call
from node.chain_dir import init_chain_dir
from node.ledger import Ledger
from node.permissions import ContractRoles, NotPermitted, Permissions

PASSWORD = b"role-cache"


class CountingReader:
    """The ledger, counting the storage reads made through it."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.storage_reads = 0
        self.account_reads = 0

    @property
    def head(self) -> Header:
        return self.ledger.head

    def storage(self, header: Header, address: Address, slot: int) -> int:
        self.storage_reads += 1
        return self.ledger.storage(header, address, slot)

    def account(self, header: Header, address: Address):  # type: ignore[no-untyped-def]
        self.account_reads += 1
        return self.ledger.account(header, address)

    def roles_epoch(self, header: Header) -> int | None:
        return self.ledger.roles_epoch(header)


@pytest.fixture
def ledger(tmp_path: Path) -> tuple[Ledger, PrivateKey, PrivateKey]:
    """A dev chain's ledger, its admin (governance) and dept-b (sender and deployer)."""
    result = init_chain_dir(
        tmp_path / "chain", password=PASSWORD, dev=True, timestamp_ms=1_700_000_000_000,
        iterations=1_000,
    )  # fmt: skip
    keys = result.directory

    def key(path: Path) -> PrivateKey:
        return decrypt_keystore(path.read_bytes(), PASSWORD)

    opened = Ledger.open(tmp_path / "data", result.genesis, key(keys.validator_keystore))
    yield opened, key(keys.keystore("admin")), key(keys.keystore("dept-b"))  # type: ignore[misc]
    opened.close()


def _tx(ledger: Ledger, key: PrivateKey, to: Address, data: bytes) -> Transaction:
    unsigned = Transaction(
        chain_id=ledger.chain_id,
        nonce=Hash32(os.urandom(32)),
        block_limit=ledger.head.height + 100,
        to=to,
        value=0,
        data=data,
        gas_limit=200_000,
        public_key=key.public_key.to_bytes(),
    )
    return sign_transaction(unsigned, key)


def test_roles_are_read_again_only_when_the_contract_storage_changes(
    ledger: tuple[Ledger, PrivateKey, PrivateKey],
) -> None:
    chain, admin, dept_b = ledger
    reader = CountingReader(chain)
    roles = ContractRoles(reader)
    admin_address = admin.public_key.address
    dept_b_address = dept_b.public_key.address
    assert roles.roles(dept_b_address) == SENDER | DEPLOYER
    assert roles.roles(admin_address) & SENDER
    assert reader.storage_reads == 2

    # Blocks that leave the Permissions contract alone: the roles read stay.
    for _ in range(3):
        chain.produce_block([_tx(chain, dept_b, Address(b"\x42" * 20), b"")], 0)
        assert roles.roles(dept_b_address) == SENDER | DEPLOYER
        assert roles.roles(admin_address) & SENDER
    assert reader.storage_reads == 2

    # Governance revokes dept-b's deployer role: read again, and the new bits are seen.
    committed = chain.produce_block(
        [_tx(chain, admin, PERMISSIONS_ADDRESS, revoke_call(dept_b_address, DEPLOYER))], 0
    )
    assert committed.receipts[0].status == 1
    assert roles.roles(dept_b_address) == SENDER
    assert roles.roles(admin_address) & SENDER
    assert reader.storage_reads == 4

    # ...and grants it again: the head's roles, never those kept from before.
    chain.produce_block(
        [_tx(chain, admin, PERMISSIONS_ADDRESS, grant_call(dept_b_address, DEPLOYER))], 0
    )
    assert roles.roles(dept_b_address) == SENDER | DEPLOYER
    assert reader.storage_reads == 5


def test_blocks_that_leave_the_contract_alone_cost_no_account_read(
    ledger: tuple[Ledger, PrivateKey, PrivateKey],
) -> None:
    chain, admin, dept_b = ledger
    reader = CountingReader(chain)
    roles = ContractRoles(reader)
    dept_b_address = dept_b.public_key.address
    assert roles.roles(dept_b_address) == SENDER | DEPLOYER
    assert reader.account_reads == 1
    for _ in range(3):
        chain.produce_block([_tx(chain, dept_b, Address(b"\x42" * 20), b"")], 0)
        assert roles.roles(dept_b_address) == SENDER | DEPLOYER
    # Executed ahead and written as a group, as the dev producer does.
    for _ in range(2):
        chain.execute_ahead([_tx(chain, dept_b, Address(b"\x42" * 20), b"")], 0)
    chain.flush()
    assert roles.roles(dept_b_address) == SENDER | DEPLOYER
    assert reader.account_reads == 1 and reader.storage_reads == 1

    # A block that changes a role is read again at once.
    chain.execute_ahead([_tx(chain, dept_b, Address(b"\x42" * 20), b"")], 0)
    chain.execute_ahead(
        [_tx(chain, admin, PERMISSIONS_ADDRESS, revoke_call(dept_b_address, DEPLOYER))], 0
    )
    chain.flush()
    assert roles.roles(dept_b_address) == SENDER
    assert reader.account_reads == 2


def test_a_sender_revoked_in_a_block_is_refused_right_after(
    ledger: tuple[Ledger, PrivateKey, PrivateKey],
) -> None:
    chain, admin, dept_b = ledger
    permissions = Permissions.at_head(chain)
    dept_b_address = dept_b.public_key.address
    permissions.check(_tx(chain, dept_b, Address(b"\x42" * 20), b""), dept_b_address)
    chain.produce_block([_tx(chain, dept_b, Address(b"\x42" * 20), b"")], 0)
    permissions.check(_tx(chain, dept_b, Address(b"\x42" * 20), b""), dept_b_address)

    revoke = _tx(chain, admin, PERMISSIONS_ADDRESS, revoke_call(dept_b_address, SENDER))
    assert chain.produce_block([revoke], 0).receipts[0].status == 1
    with pytest.raises(NotPermitted):
        permissions.check(_tx(chain, dept_b, Address(b"\x42" * 20), b""), dept_b_address)


def test_rewinding_past_a_role_change_reads_the_roles_of_the_rewound_head(
    ledger: tuple[Ledger, PrivateKey, PrivateKey],
) -> None:
    chain, admin, dept_b = ledger
    roles = ContractRoles(chain)
    dept_b_address = dept_b.public_key.address
    before = chain.head.height
    chain.produce_block(
        [_tx(chain, admin, PERMISSIONS_ADDRESS, revoke_call(dept_b_address, DEPLOYER))], 0
    )
    assert roles.roles(dept_b_address) == SENDER
    chain.rewind_dev(before)
    assert roles.roles(dept_b_address) == SENDER | DEPLOYER
    # New blocks on the rewound head, then the same revocation again: each head's own roles.
    chain.produce_block([_tx(chain, dept_b, Address(b"\x42" * 20), b"")], 0)
    assert roles.roles(dept_b_address) == SENDER | DEPLOYER
    chain.produce_block(
        [_tx(chain, admin, PERMISSIONS_ADDRESS, revoke_call(dept_b_address, SENDER))], 0
    )
    assert roles.roles(dept_b_address) == DEPLOYER
