"""Precommits that arrive after a block is decided go into the certificate the next block
carries, so the chain's liveness record sees validators that are online but slower; a grown
certificate that does not verify is never carried."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from node_harness import make_chain

from chain.commit import sign_precommit
from chain.consensus import Vote, VoteType
from chain.crypto import PrivateKey
from chain.genesis import GenesisValidator
from chain.primitives import Hash32
from chain.types import CommitCertificate
from contracts.validators import validator_governance_contract
from node.late_precommits import LatePrecommits
from node.ledger import Ledger

CHAIN_ID = 7
BLOCK = Hash32(b"\x11" * 32)


def keys(count: int) -> list[PrivateKey]:
    return sorted((PrivateKey.generate() for _ in range(count)), key=lambda k: k.public_key.address)


def precommit(key: PrivateKey, block_hash: Hash32 | None = BLOCK, round_: int = 0) -> Vote:
    vote = Vote(VoteType.PRECOMMIT, 5, round_, block_hash, key.public_key.address)
    return vote.with_signature(key.sign(vote.sign_bytes(CHAIN_ID)))


def certificate(signers: list[PrivateKey]) -> CommitCertificate:
    signatures = sorted(
        (
            sign_precommit(k, chain_id=CHAIN_ID, height=5, round_=0, block_hash=BLOCK)
            for k in signers
        ),
        key=lambda s: s.validator,
    )
    return CommitCertificate(height=5, round=0, block_hash=BLOCK, signatures=tuple(signatures))


def test_late_precommits_for_the_decided_block_grow_its_certificate() -> None:
    four = keys(4)
    late = LatePrecommits()
    assert late.certificate_of(5) is None
    decided = certificate(four[:3])
    late.decided(decided)
    assert late.certificate_of(5) == decided
    # Not for this block, round or height, not a precommit, or already in: ignored.
    late.offer(precommit(four[3], block_hash=None))
    late.offer(precommit(four[3], round_=1))
    prevote = Vote(VoteType.PREVOTE, 5, 0, BLOCK, four[3].public_key.address)
    late.offer(prevote.with_signature(four[3].sign(prevote.sign_bytes(CHAIN_ID))))
    late.offer(precommit(four[0]))
    assert late.certificate_of(5) == decided
    late.offer(precommit(four[3]))
    grown = late.certificate_of(5)
    assert grown is not None and grown.block_hash == BLOCK and grown.round == 0
    assert [s.validator for s in grown.signatures] == [k.public_key.address for k in four]
    assert late.certificate_of(4) is None
    late.decided(certificate(four[:3]))  # the next decision starts afresh
    assert len(late.certificate_of(5).signatures) == 3  # type: ignore[union-attr]


def two_validator_ledger(data_dir: Path, other: PrivateKey) -> Ledger:
    """A governed ledger whose own key holds 10 of 11 power: its single signature commits,
    and the second validator's precommit can only come late."""
    chain = make_chain()
    own = replace(chain.genesis.validators[0], power=10)
    validators = (own, GenesisValidator("other", other.public_key.to_bytes(), 1))
    genesis = replace(
        chain.genesis,
        validators=validators,
        system_contracts=(validator_governance_contract(validators),),
    )
    return Ledger.open(data_dir, genesis, chain.validator)


def test_the_next_block_carries_the_grown_certificate_only_if_it_verifies(
    tmp_path: Path,
) -> None:
    other = PrivateKey.generate()
    ledger = two_validator_ledger(tmp_path, other)
    try:
        ledger.produce_block([], int(time.time() * 1000))
        head = ledger.head
        stored = ledger.certificate(head.height)
        assert stored is not None and len(stored.signatures) == 1
        late = sign_precommit(
            other, chain_id=ledger.chain_id, height=head.height, round_=0, block_hash=head.hash
        )
        grown = replace(
            stored,
            signatures=tuple(sorted((*stored.signatures, late), key=lambda s: s.validator)),
        )
        prepared = ledger.prepare_block([], int(time.time() * 1000), grown)
        assert prepared.block.last_commit == grown

        forged = replace(
            grown,
            signatures=tuple(
                replace(s, signature=stored.signatures[0].signature)
                if s.validator == other.public_key.address
                else s
                for s in grown.signatures
            ),
        )
        assert ledger.prepare_block([], int(time.time() * 1000), forged).block.last_commit == stored
        assert ledger.prepare_block([], int(time.time() * 1000)).block.last_commit == stored
    finally:
        ledger.close()
