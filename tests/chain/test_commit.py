"""Commit certificates: quorum, signatures, domain separation."""

from __future__ import annotations

import dataclasses

import pytest

from chain.commit import (
    CommitError,
    Validator,
    ValidatorSet,
    precommit_sign_bytes,
    sign_precommit,
    verify_commit_certificate,
)
from chain.crypto import PrivateKey
from chain.primitives import Hash32
from chain.types import CommitCertificate, CommitSignature

CHAIN_ID = 7
HEIGHT = 5
BLOCK = Hash32(b"\x11" * 32)


@pytest.fixture(scope="module")
def keys() -> list[PrivateKey]:
    return [PrivateKey.generate() for _ in range(4)]


@pytest.fixture(scope="module")
def validators(keys: list[PrivateKey]) -> ValidatorSet:
    return ValidatorSet.of(Validator(k.public_key.to_bytes(), 1) for k in keys)


def certificate(
    signers: list[PrivateKey], *, chain_id: int = CHAIN_ID, block: Hash32 = BLOCK
) -> CommitCertificate:
    entries = [
        sign_precommit(k, chain_id=chain_id, height=HEIGHT, round_=0, block_hash=block)
        for k in signers
    ]
    return CommitCertificate(HEIGHT, 0, block, tuple(sorted(entries, key=lambda e: e.validator)))


def verify(cert: CommitCertificate, validators: ValidatorSet) -> None:
    verify_commit_certificate(cert, validators, chain_id=CHAIN_ID, block_hash=BLOCK, height=HEIGHT)


def test_quorum_of_three_in_four_verifies(keys: list[PrivateKey], validators: ValidatorSet):
    assert validators.quorum_power == 3
    verify(certificate(keys[:3]), validators)
    verify(certificate(keys), validators)


def test_two_of_four_is_not_a_quorum(keys: list[PrivateKey], validators: ValidatorSet):
    with pytest.raises(CommitError, match="below quorum"):
        verify(certificate(keys[:2]), validators)


def test_unknown_validator_is_refused(keys: list[PrivateKey], validators: ValidatorSet):
    with pytest.raises(CommitError, match="unknown validator"):
        verify(certificate([*keys[:2], PrivateKey.generate()]), validators)


def test_signature_from_another_chain_is_refused(keys, validators):
    with pytest.raises(CommitError, match="bad precommit signature"):
        verify(certificate(keys[:3], chain_id=CHAIN_ID + 1), validators)


def test_forged_signature_is_refused(keys, validators):
    good = certificate(keys[:3])
    first = good.signatures[0]
    forged = CommitSignature(first.validator, good.signatures[1].signature)
    cert = dataclasses.replace(good, signatures=(forged, *good.signatures[1:]))
    with pytest.raises(CommitError, match="bad precommit signature"):
        verify(cert, validators)


def test_certificate_for_another_block_is_refused(keys, validators):
    with pytest.raises(CommitError, match="expected height"):
        verify(certificate(keys[:3], block=Hash32(b"\x22" * 32)), validators)


def test_sign_bytes_separate_fields():
    base = precommit_sign_bytes(CHAIN_ID, HEIGHT, 0, BLOCK)
    assert base.startswith(b"lianxin/precommit/v1\x00")
    assert base != precommit_sign_bytes(CHAIN_ID + 1, HEIGHT, 0, BLOCK)
    assert base != precommit_sign_bytes(CHAIN_ID, HEIGHT + 1, 0, BLOCK)
    assert base != precommit_sign_bytes(CHAIN_ID, HEIGHT, 1, BLOCK)


def test_validator_set_rejects_duplicates_and_zero_power(keys):
    key = keys[0].public_key.to_bytes()
    with pytest.raises(CommitError):
        ValidatorSet.of([Validator(key, 1), Validator(key, 2)])
    with pytest.raises(CommitError):
        ValidatorSet.of([Validator(key, 0)])
    with pytest.raises(CommitError):
        ValidatorSet.of([])
