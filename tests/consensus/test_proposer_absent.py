"""A validator absent from the recent commit certificates is passed over as proposer (it keeps
its vote): the rotation, the state machine's round-0 proposer, and the liveness rule that
decides who is absent (chain.liveness)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from sim import CHAIN_ID, Sm2Signer, validator_keys

from chain.commit import Validator, ValidatorSet
from chain.consensus import (
    ConsensusConfig,
    ConsensusState,
    PrepareProposal,
    Proposal,
    ProposalReceived,
    ProposerSchedule,
    StartHeight,
    step,
)
from chain.crypto import sm3
from chain.liveness import PROPOSER_LIVENESS_WINDOW, absent_validators
from chain.primitives import Address, Hash32
from chain.types import CommitCertificate, CommitSignature

KEYS = validator_keys(4)
VALIDATORS = ValidatorSet.of(Validator(k.public_key.to_bytes(), 1) for k in KEYS)
ADDRESSES = [v.address for v in VALIDATORS.validators]


def validator_set(powers: list[int]) -> ValidatorSet:
    keys = validator_keys(len(powers))
    return ValidatorSet.of(
        Validator(k.public_key.to_bytes(), p) for k, p in zip(keys, powers, strict=True)
    )


def certificate(height: int, signers: list[Address]) -> CommitCertificate:
    return CommitCertificate(
        height=height,
        round=0,
        block_hash=Hash32(bytes(32)),
        signatures=tuple(CommitSignature(a, b"\x30") for a in sorted(signers)),
    )


def test_nobody_absent_keeps_the_cometbft_rotation() -> None:
    schedule = ProposerSchedule.initial(VALIDATORS)
    assert schedule.with_absent(frozenset()) == schedule
    assert [schedule.proposer(r) for r in range(8)] == ADDRESSES * 2


@settings(max_examples=40, deadline=None)
@given(
    powers=st.lists(st.integers(1, 4), min_size=2, max_size=6),
    heights=st.integers(0, 12),
    data=st.data(),
)
def test_absent_members_are_passed_over_in_rotation_order(
    powers: list[int], heights: int, data: st.DataObject
) -> None:
    """Round r's proposer is the r-th pick of the unchanged rotation that is not absent."""
    validators = validator_set(powers)
    schedule = ProposerSchedule.initial(validators)
    for _ in range(heights):
        schedule = schedule.next_height()
    addresses = [v.address for v in validators.validators]
    absent = frozenset(data.draw(st.sets(st.sampled_from(addresses), max_size=len(addresses) - 1)))
    # Every member is picked once within total_power rounds of the rotation.
    rotation = [schedule.proposer(r) for r in range(2 * validators.total_power)]
    present = [a for a in rotation if a not in absent]
    skipping = schedule.with_absent(absent)
    assert [skipping.proposer(r) for r in range(len(present))] == present
    # The priorities advance as before: the next height is the same whoever was absent.
    assert skipping.next_height() == schedule.next_height()


def test_everyone_absent_is_ignored() -> None:
    schedule = ProposerSchedule.initial(VALIDATORS)
    everyone = schedule.with_absent(frozenset(ADDRESSES))
    assert [everyone.proposer(r) for r in range(4)] == ADDRESSES


def test_the_state_machine_asks_the_next_present_validator_to_propose_at_round_0() -> None:
    """Validator 0 is the rotation's pick for round 0 but absent: validator 1 prepares a block
    at once (no propose timeout waited), and a proposal signed by validator 0 is ignored."""
    schedule = ProposerSchedule.initial(VALIDATORS).with_absent(frozenset({ADDRESSES[0]}))
    assert schedule.proposer(0) == ADDRESSES[1]
    state = ConsensusState.initial(ConsensusConfig(CHAIN_ID, ADDRESSES[1]))
    state, effects = step(state, StartHeight(1, schedule))
    assert PrepareProposal(1, 0) in effects

    observer = ConsensusState.initial(ConsensusConfig(CHAIN_ID, ADDRESSES[2]))
    observer, effects = step(observer, StartHeight(1, schedule))
    assert not any(isinstance(e, PrepareProposal) for e in effects)
    block = b"block from the absent one"
    unsigned = Proposal(1, 0, sm3(block), block, -1, ADDRESSES[0])
    signed = Sm2Signer(KEYS).sign(0, unsigned)
    assert isinstance(signed, Proposal)
    observer, effects = step(observer, ProposalReceived(signed))
    assert effects == [] and observer.proposals == {}


def test_absent_means_in_none_of_the_last_window_certificates() -> None:
    everyone = list(ADDRESSES)
    without_3 = ADDRESSES[:3]
    window = PROPOSER_LIVENESS_WINDOW
    # Too few certificates yet (block 1 carries none): nobody is absent.
    early = [None] + [certificate(h, without_3) for h in range(1, window)]
    assert absent_validators(VALIDATORS, early) == frozenset()
    recent = [certificate(h, without_3) for h in range(1, window + 1)]
    assert absent_validators(VALIDATORS, recent) == frozenset({ADDRESSES[3]})
    # One certificate with validator 3 in the window is enough.
    recent[-window] = certificate(1, everyone)
    assert absent_validators(VALIDATORS, recent) == frozenset()
    # Only the last ``window`` count.
    older = [certificate(0, everyone), *[certificate(h, without_3) for h in range(1, window + 1)]]
    assert absent_validators(VALIDATORS, older) == frozenset({ADDRESSES[3]})


def test_absent_never_leaves_less_than_a_quorum_to_propose() -> None:
    # Inconsistent input (certificates below quorum): nobody is called absent.
    thin = [certificate(h, ADDRESSES[:2]) for h in range(1, PROPOSER_LIVENESS_WINDOW + 1)]
    assert absent_validators(VALIDATORS, thin) == frozenset()
