"""Consensus messages: canonical RLP, sign-bytes with type prefix and chain id, and
verification at the boundary with typed errors."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sim import validator_keys

from chain.commit import (
    PRECOMMIT_SIGN_PREFIX,
    Validator,
    ValidatorSet,
    precommit_sign_bytes,
)
from chain.consensus import (
    NIL_PRECOMMIT_SIGN_PREFIX,
    NIL_ROUND,
    PREVOTE_SIGN_PREFIX,
    PROPOSAL_SIGN_PREFIX,
    BadMessageSignature,
    BlockHashMismatch,
    InvalidMessage,
    Proposal,
    UnknownValidator,
    Vote,
    VoteType,
    WrongHeight,
    decode_message,
    encode_message,
    verify_proposal,
    verify_vote,
)
from chain.crypto import sm3
from chain.errors import ChainError, EncodingError
from chain.primitives import Address, Hash32

CHAIN_ID = 42
KEYS = validator_keys(4)
VALIDATORS = ValidatorSet.of(Validator(k.public_key.to_bytes(), 1) for k in KEYS[:3])
OUTSIDER = KEYS[3]
HASH = Hash32(b"\x22" * 32)

hashes = st.binary(min_size=32, max_size=32).map(Hash32)
addresses = st.binary(min_size=20, max_size=20).map(Address)
small = st.integers(0, 2**40)
signatures = st.binary(max_size=72)

votes = st.builds(
    Vote,
    type=st.sampled_from(VoteType),
    height=small,
    round=small,
    block_hash=st.none() | hashes,
    validator=addresses,
    signature=signatures,
)


@st.composite
def proposals(draw: st.DrawFn) -> Proposal:
    round_ = draw(small)
    return Proposal(
        height=draw(small),
        round=round_,
        block_hash=draw(hashes),
        block=draw(st.binary(max_size=300)),
        valid_round=draw(st.integers(NIL_ROUND, round_ - 1)) if round_ else NIL_ROUND,
        proposer=draw(addresses),
        signature=draw(signatures),
    )


@given(votes)
def test_vote_round_trips(vote: Vote) -> None:
    assert Vote.decode(vote.encode()) == vote
    assert decode_message(encode_message(vote)) == vote


@given(proposals())
def test_proposal_round_trips(proposal: Proposal) -> None:
    assert Proposal.decode(proposal.encode()) == proposal
    assert decode_message(encode_message(proposal)) == proposal


def test_non_canonical_encodings_are_refused() -> None:
    vote = Vote(VoteType.PREVOTE, 1, 0, HASH, Address(b"\x01" * 20), b"sig")
    with pytest.raises(EncodingError):
        Vote.decode(vote.encode() + b"\x00")
    bad_type = dataclasses.replace(vote, type=3)  # type: ignore[arg-type]
    with pytest.raises(EncodingError, match="unknown vote type"):
        Vote.decode(bad_type.encode())
    short_hash = dataclasses.replace(vote, block_hash=Hash32(b"\x01" * 31))
    with pytest.raises(EncodingError, match="0 or 32 bytes"):
        Vote.decode(short_hash.encode())
    proposal = Proposal(1, 2, HASH, b"block", 2, Address(b"\x01" * 20))
    with pytest.raises(EncodingError, match="valid_round"):
        Proposal.decode(proposal.encode())
    with pytest.raises(EncodingError, match="unknown kind"):
        decode_message(b"\xc3\x09\xc1\x80")


def test_sign_bytes_carry_a_type_prefix_and_the_chain_id() -> None:
    author = Address(b"\x01" * 20)
    prevote = Vote(VoteType.PREVOTE, 5, 1, HASH, author)
    precommit = Vote(VoteType.PRECOMMIT, 5, 1, HASH, author)
    nil_prevote = Vote(VoteType.PREVOTE, 5, 1, None, author)
    nil_precommit = Vote(VoteType.PRECOMMIT, 5, 1, None, author)
    proposal = Proposal(5, 1, HASH, b"block", NIL_ROUND, author)
    assert prevote.sign_bytes(CHAIN_ID).startswith(PREVOTE_SIGN_PREFIX)
    assert nil_prevote.sign_bytes(CHAIN_ID).startswith(PREVOTE_SIGN_PREFIX)
    assert nil_precommit.sign_bytes(CHAIN_ID).startswith(NIL_PRECOMMIT_SIGN_PREFIX)
    assert proposal.sign_bytes(CHAIN_ID).startswith(PROPOSAL_SIGN_PREFIX)
    # A block precommit signs exactly what commit certificates are checked against.
    assert precommit.sign_bytes(CHAIN_ID) == precommit_sign_bytes(CHAIN_ID, 5, 1, HASH)
    assert precommit.sign_bytes(CHAIN_ID).startswith(PRECOMMIT_SIGN_PREFIX)
    messages = [prevote, precommit, nil_prevote, nil_precommit, proposal]
    all_bytes = {m.sign_bytes(CHAIN_ID) for m in messages}
    assert len(all_bytes) == len(messages)
    assert all(m.sign_bytes(CHAIN_ID) != m.sign_bytes(CHAIN_ID + 1) for m in messages)
    # The block bytes are bound through the hash, not signed twice.
    assert proposal.sign_bytes(CHAIN_ID) == dataclasses.replace(
        proposal, block=b"other"
    ).sign_bytes(CHAIN_ID)


def signed_vote(key_index: int, **changes: object) -> Vote:
    key = KEYS[key_index]
    vote = Vote(VoteType.PRECOMMIT, 3, 0, HASH, key.public_key.address)
    vote = dataclasses.replace(vote, **changes)  # type: ignore[arg-type]
    return vote.with_signature(key.sign(vote.sign_bytes(CHAIN_ID)))


def test_verify_vote_accepts_a_member_signature() -> None:
    verify_vote(signed_vote(0), VALIDATORS, CHAIN_ID, height=3)
    verify_vote(signed_vote(1, block_hash=None, type=VoteType.PREVOTE), VALIDATORS, CHAIN_ID)


def test_verify_vote_refuses_with_typed_errors() -> None:
    with pytest.raises(UnknownValidator):
        verify_vote(signed_vote(3), VALIDATORS, CHAIN_ID)
    with pytest.raises(BadMessageSignature):
        verify_vote(signed_vote(0), VALIDATORS, CHAIN_ID + 1)
    with pytest.raises(WrongHeight):
        verify_vote(signed_vote(0), VALIDATORS, CHAIN_ID, height=4)
    with pytest.raises(BadMessageSignature, match="unsigned"):
        verify_vote(signed_vote(0).unsigned(), VALIDATORS, CHAIN_ID)
    # A prevote signature cannot be passed off as a precommit (domain separation).
    prevote = signed_vote(0, type=VoteType.PREVOTE)
    with pytest.raises(BadMessageSignature):
        verify_vote(dataclasses.replace(prevote, type=VoteType.PRECOMMIT), VALIDATORS, CHAIN_ID)
    assert issubclass(InvalidMessage, ChainError)


def test_verify_proposal_checks_signature_and_block_hash() -> None:
    key = KEYS[0]
    block = b"a block"
    proposal = Proposal(3, 1, sm3(block), block, 0, key.public_key.address)
    proposal = proposal.with_signature(key.sign(proposal.sign_bytes(CHAIN_ID)))
    verify_proposal(proposal, VALIDATORS, CHAIN_ID, hash_block=sm3, height=3)
    with pytest.raises(BlockHashMismatch):
        verify_proposal(
            dataclasses.replace(proposal, block=b"another"), VALIDATORS, CHAIN_ID, hash_block=sm3
        )
    with pytest.raises(BadMessageSignature):
        verify_proposal(
            dataclasses.replace(proposal, valid_round=NIL_ROUND),
            VALIDATORS,
            CHAIN_ID,
            hash_block=sm3,
        )
    with pytest.raises(InvalidMessage, match="valid round"):
        verify_proposal(
            dataclasses.replace(proposal, valid_round=1), VALIDATORS, CHAIN_ID, hash_block=sm3
        )
