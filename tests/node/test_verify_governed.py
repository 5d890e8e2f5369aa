"""verify-chain on a chain whose validator set changed through governance: every header and
certificate is checked against the set ruling its height (``validatorsAt(height)`` in the
state after the parent), as the ledger checks them, not against the genesis set."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from node_harness import make_chain, signed_tx

from chain.commit import sign_precommit
from chain.crypto import PrivateKey
from chain.genesis import Genesis, GenesisValidator
from chain.storage import BlockStore
from chain.types import CommitCertificate, Transaction
from contracts.validators import (
    ACTIVATION_DELAY,
    VALIDATOR_GOVERNANCE_ADDRESS,
    propose_call,
    propose_rotation_call,
    rotation_message,
    validator_governance_contract,
)
from node.ledger import Ledger
from node.verify import verify_chain

DECIDER_POWER = 10
"""The validator that signs every block; the other genesis validator has power 1, so the
decider's signature alone is a quorum before and after the change."""


class Governed:
    """A ledger whose genesis deploys ValidatorGovernance with two validators: ``decider``
    signs every block (dev-mode single signatures), ``other`` is removed by governance."""

    def __init__(self, data_dir: Path) -> None:
        chain = make_chain()
        self.decider = chain.validator
        self.other = PrivateKey.generate()
        validators = (
            replace(chain.genesis.validators[0], power=DECIDER_POWER),
            GenesisValidator(name="other", public_key=self.other.public_key.to_bytes(), power=1),
        )
        self.genesis: Genesis = replace(
            chain.genesis,
            validators=validators,
            system_contracts=(validator_governance_contract(validators),),
        )
        self.ledger = Ledger.open(data_dir, self.genesis, self.decider)

    def block(self, *txs: bytes) -> None:
        signed = [
            signed_tx(self.decider, to=VALIDATOR_GOVERNANCE_ADDRESS, data=data, gas_limit=2_000_000)
            for data in txs
        ]
        self.commit(signed)

    def commit(self, signed: list[Transaction]) -> None:
        committed = self.ledger.produce_block(signed, int(time.time() * 1000))
        assert all(receipt.status == 1 for receipt in committed.receipts)

    def remove_other(self) -> int:
        """Remove ``other`` by a proposal that passes at once; returns the first height
        ruled by the new set, with two blocks committed past it."""
        self.block(propose_call(self.other.public_key.to_bytes(), 0))
        effective = self.ledger.head.height + ACTIVATION_DELAY
        while self.ledger.head.height < effective + 2:
            self.block()
        assert self.ledger.validator_set(effective).since == effective
        assert len(self.ledger.validator_set(effective).validators.validators) == 1
        return effective


@pytest.fixture
def governed(tmp_path: Path) -> Iterator[Governed]:
    chain = Governed(tmp_path)
    yield chain
    chain.ledger.close()


def test_a_chain_whose_set_changed_verifies(governed: Governed) -> None:
    """Before, the first header of the new set was refused: 'validator set hash differs'."""
    governed.remove_other()
    assert verify_chain(governed.ledger.store, governed.genesis) is None


class _ForgedCertificate:
    """The store as it is, except the commit certificate stored at one height."""

    def __init__(self, store: BlockStore, height: int, certificate: CommitCertificate) -> None:
        self._store = store
        self._height = height
        self._certificate = certificate

    def commit_certificate(self, height: int) -> CommitCertificate | None:
        if height == self._height:
            return self._certificate
        return self._store.commit_certificate(height)

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)


def test_a_certificate_is_checked_against_the_set_of_its_height(governed: Governed) -> None:
    """A certificate that the genesis set accepts but that carries the precommit of a
    validator removed before its height is refused, at that height."""
    effective = governed.remove_other()
    height = effective + 1
    block = governed.ledger.block(height)
    assert block is not None
    signatures = [
        sign_precommit(
            key,
            chain_id=governed.genesis.chain_id,
            height=height,
            round_=0,
            block_hash=block.hash,
        )
        for key in (governed.decider, governed.other)
    ]
    forged = CommitCertificate(
        height=height,
        round=0,
        block_hash=block.hash,
        signatures=tuple(sorted(signatures, key=lambda s: s.validator)),
    )
    store = _ForgedCertificate(governed.ledger.store, height, forged)
    fault = verify_chain(store, governed.genesis)  # type: ignore[arg-type]
    assert fault is not None
    assert fault.height == height
    assert "unknown validator" in fault.reason


def test_a_chain_across_a_key_rotation_verifies_and_refuses_the_old_key_after_it(
    governed: Governed,
) -> None:
    """The decider rotates its key. verify-chain passes from genesis: certificates before the
    rotation's height are checked with the old key, those from it with the new one. A
    certificate of a height from the rotation on that carries the old key's precommit is
    refused, at that height."""
    old, new = governed.decider, PrivateKey.generate()
    new_key = new.public_key.to_bytes()
    possession = new.sign(
        rotation_message(governed.genesis.chain_id, old.public_key.address, new_key)
    )
    governed.block(propose_rotation_call(new_key, possession))
    effective = governed.ledger.head.height + ACTIVATION_DELAY
    while governed.ledger.head.height < effective - 1:
        governed.block()
    governed.ledger.use_validator_key(new)
    for _ in range(3):
        governed.commit([])
    assert governed.ledger.validator_set(effective).since == effective
    assert verify_chain(governed.ledger.store, governed.genesis) is None

    height = effective + 1
    block = governed.ledger.block(height)
    assert block is not None
    signature = sign_precommit(
        old, chain_id=governed.genesis.chain_id, height=height, round_=0, block_hash=block.hash
    )
    forged = CommitCertificate(
        height=height, round=0, block_hash=block.hash, signatures=(signature,)
    )
    store = _ForgedCertificate(governed.ledger.store, height, forged)
    fault = verify_chain(store, governed.genesis)  # type: ignore[arg-type]
    assert fault is not None and fault.height == height
    assert "unknown validator" in fault.reason
