"""Proof bundles offline: a bundle built here link by link (the same shapes the node and
the registry produce) verifies against its validator set, survives its canonical JSON, and
every tampered piece fails the link it belongs to."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Callable

import pytest
from eth_abi.abi import encode as abi_encode

from chain.commit import Validator, ValidatorSet, sign_precommit
from chain.crypto import PrivateKey, sm3
from chain.merkle import MerkleTree
from chain.primitives import Address
from chain.types import CommitCertificate, Header, Log, Receipt
from chain.validation import sign_transaction
from contracts.trust import OPEN_ENDED, ContractCodec, Role, account_of, uscc_bytes
from sdk.bundle import (
    AnchorClaim,
    BatchClaim,
    BundleFormatError,
    BundleInvalid,
    DepartmentClaim,
    IssuerKeyClaim,
    Link,
    ProofBundle,
    RecordClaim,
    field_hash,
    metadata_hash,
    verify_bundle,
)
from sdk.transactions import build_transaction

CHAIN_ID = 7
HEIGHT = 42
USCC = "91350100M000100Y43"
NOTARY_ADDRESS = Address(b"\x11" * 20)
VALIDATOR_KEY = PrivateKey.from_bytes(sm3(b"bundle test validator"))
ISSUER_KEY = PrivateKey.from_bytes(sm3(b"bundle test issuer"))
NOTARY = ContractCodec.load("Notary")
VALIDATORS = ValidatorSet.of([Validator(VALIDATOR_KEY.public_key.to_bytes(), 1)])


def batch_anchored_log(root: bytes, leaf_count: int, meta: bytes, issuer: bytes) -> Log:
    """The Notary's BatchAnchored event as the EVM would log it."""
    from eth_utils.crypto import keccak

    topic = keccak(text="BatchAnchored(bytes32,address,bytes18,uint64,bytes32)")
    return Log(
        address=NOTARY_ADDRESS,
        topics=(topic, root, bytes(12) + issuer, uscc_bytes(USCC) + bytes(14)),  # type: ignore[arg-type]
        data=abi_encode(["uint64", "bytes32"], [leaf_count, meta]),
    )


def make_bundle(
    record: RecordClaim | None = None, department: DepartmentClaim | None = None
) -> ProofBundle:
    """A valid bundle: record → batch of 3 → anchor tx (2nd in its block) → header → cert
    (version 2 with the department's signature if ``department`` is given)."""
    record = record or RecordClaim(
        record_id=str(uuid.UUID(int=1)),
        digest=sm3(b"document"),
        metadata_hash=metadata_hash({"title": "营业执照"}),
        field_hashes=(("holder", field_hash("holder", "张三", b"s" * 16)),),
    )
    tree = MerkleTree.build([record.commitment(), sm3(b"leaf 1"), sm3(b"leaf 2")])
    batch_meta = sm3(b"batch metadata")
    batch = BatchClaim(root=tree.root, leaf_count=3, metadata_hash=batch_meta, proof=tree.prove(0))
    unsigned = build_transaction(
        chain_id=CHAIN_ID,
        to=NOTARY_ADDRESS,
        data=NOTARY.encode_call("anchor", tree.root, 3, batch_meta),
        gas_limit=400_000,
        block_limit=HEIGHT + 100,
    )
    tx = sign_transaction(unsigned, ISSUER_KEY)
    issuer = account_of(ISSUER_KEY.public_key.to_bytes())
    receipt = Receipt(
        tx_hash=tx.hash,
        status=1,
        gas_used=60_000,
        contract_address=None,
        logs=(batch_anchored_log(tree.root, 3, batch_meta, issuer),),
        output=b"",
    )
    other = Receipt(sm3(b"other tx"), 1, 21_000, None, (), b"")
    tx_tree = MerkleTree.build([sm3(b"other tx"), tx.hash])
    receipt_tree = MerkleTree.build([other.encode(), receipt.encode()])
    header = Header(
        parent_hash=sm3(b"parent"),
        height=HEIGHT,
        timestamp_ms=1_700_000_000_000,
        proposer=VALIDATOR_KEY.public_key.address,
        tx_root=tx_tree.root,
        receipt_root=receipt_tree.root,
        state_root=sm3(b"state"),
        validator_set_hash=VALIDATORS.hash(),
        last_commit_hash=sm3(b"last commit"),
    )
    signature = sign_precommit(
        VALIDATOR_KEY, chain_id=CHAIN_ID, height=HEIGHT, round_=0, block_hash=header.hash
    )
    return ProofBundle(
        version=1 if department is None else 2,
        chain_id=CHAIN_ID,
        record=record,
        batch=batch,
        anchor=AnchorClaim(
            notary=NOTARY_ADDRESS,
            raw_transaction=tx.encode(),
            transaction_proof=tx_tree.prove(1),
            receipt=receipt.encode(),
            receipt_proof=receipt_tree.prove(1),
        ),
        header=header,
        commit_certificate=CommitCertificate(HEIGHT, 0, header.hash, (signature,)),
        validators=VALIDATORS,
        issuer_key=IssuerKeyClaim(
            issuer_registry=Address(b"\x22" * 20),
            uscc=USCC,
            key_id=0,
            public_key=ISSUER_KEY.public_key.to_bytes(),
            roles=int(Role.ISSUER | Role.REVOKER),
            valid_from_block=10,
            valid_until_block=OPEN_ENDED,
            read_at_block=HEIGHT,
        ),
        department=department,
    )


BUNDLE = make_bundle()


def test_a_complete_bundle_verifies_offline() -> None:
    verdict = verify_bundle(
        BUNDLE,
        VALIDATORS,
        chain_id=CHAIN_ID,
        expected_digest=sm3(b"document"),
        notary=NOTARY_ADDRESS,
    )
    assert verdict.valid, verdict.failures
    assert [check.link for check in verdict.checks] == list(Link)
    verdict.raise_for_failure()


def test_canonical_json_round_trips() -> None:
    data = BUNDLE.canonical_json()
    assert ProofBundle.from_canonical_json(data) == BUNDLE
    assert ProofBundle.from_canonical_json(data).canonical_json() == data


@pytest.mark.parametrize("broken", [b"{", b"[]", b'{"version": 2}', b'{"version": 1}'])
def test_malformed_json_raises_a_format_error(broken: bytes) -> None:
    with pytest.raises(BundleFormatError):
        ProofBundle.from_canonical_json(broken)


@pytest.mark.parametrize(
    ("part", "member", "value"),
    [
        ("record", "recordId", True),
        ("record", "recordId", 7),
        ("record", "recordId", ["x"]),
        ("batch", "leafCount", 2**64),
        ("batch", "leafCount", 2**300),
    ],
)
def test_a_member_of_another_type_or_range_raises_a_format_error(
    part: str, member: str, value: object
) -> None:
    """Each of these once raised something else (AttributeError from the UUID parser; a
    count past Notary.anchor's uint64 raised the ABI encoder's error out of verify_bundle)."""
    data = json.loads(BUNDLE.canonical_json())
    data[part][member] = value
    with pytest.raises(BundleFormatError):
        ProofBundle.from_json(data)


def _replace(**changes: Callable[[ProofBundle], object]) -> Callable[[], ProofBundle]:
    def make() -> ProofBundle:
        return dataclasses.replace(BUNDLE, **{k: f(BUNDLE) for k, f in changes.items()})

    return make


def _flip(data: bytes, index: int) -> bytes:
    changed = bytearray(data)
    changed[index] ^= 0x01
    return bytes(changed)


OTHER_KEY = PrivateKey.from_bytes(sm3(b"someone else"))

TAMPERED: dict[str, tuple[Callable[[], ProofBundle], Link]] = {
    "digest": (
        _replace(record=lambda b: dataclasses.replace(b.record, digest=sm3(b"x"))),
        Link.BATCH,
    ),
    "field hash": (
        _replace(
            record=lambda b: dataclasses.replace(b.record, field_hashes=(("holder", sm3(b"y")),))
        ),
        Link.BATCH,
    ),
    "merkle sibling": (
        _replace(
            batch=lambda b: dataclasses.replace(
                b.batch,
                proof=dataclasses.replace(
                    b.batch.proof,
                    path=(
                        dataclasses.replace(b.batch.proof.path[0], sibling=sm3(b"z")),
                        *b.batch.proof.path[1:],
                    ),
                ),
            )
        ),
        Link.BATCH,
    ),
    "leaf count": (
        _replace(batch=lambda b: dataclasses.replace(b.batch, leaf_count=4)),
        Link.BATCH,
    ),
    "batch metadata": (
        _replace(batch=lambda b: dataclasses.replace(b.batch, metadata_hash=sm3(b"m"))),
        Link.TRANSACTION,
    ),
    "tx signature": (
        _replace(
            anchor=lambda b: dataclasses.replace(
                b.anchor, raw_transaction=_flip(b.anchor.raw_transaction, -3)
            )
        ),
        Link.TRANSACTION,
    ),
    "other notary": (
        _replace(anchor=lambda b: dataclasses.replace(b.anchor, notary=Address(b"\x33" * 20))),
        Link.TRANSACTION,
    ),
    "receipt": (
        _replace(
            anchor=lambda b: dataclasses.replace(b.anchor, receipt=_flip(b.anchor.receipt, 40))
        ),
        Link.RECEIPT_INCLUSION,
    ),
    "tx proof": (
        _replace(
            anchor=lambda b: dataclasses.replace(
                b.anchor,
                transaction_proof=dataclasses.replace(b.anchor.transaction_proof, leaf_count=3),
            )
        ),
        Link.TX_INCLUSION,
    ),
    "receipt proof": (
        _replace(
            anchor=lambda b: dataclasses.replace(
                b.anchor, receipt_proof=dataclasses.replace(b.anchor.receipt_proof, path=())
            )
        ),
        Link.RECEIPT_INCLUSION,
    ),
    "header": (
        _replace(header=lambda b: dataclasses.replace(b.header, state_root=sm3(b"forged"))),
        Link.CERTIFICATE,
    ),
    "certificate": (
        _replace(
            commit_certificate=lambda b: CommitCertificate(
                HEIGHT,
                0,
                b.header.hash,
                (
                    sign_precommit(
                        OTHER_KEY,
                        chain_id=CHAIN_ID,
                        height=HEIGHT,
                        round_=0,
                        block_hash=b.header.hash,
                    ),
                ),
            )
        ),
        Link.CERTIFICATE,
    ),
    "issuer key": (
        _replace(
            issuer_key=lambda b: dataclasses.replace(
                b.issuer_key, public_key=OTHER_KEY.public_key.to_bytes()
            )
        ),
        Link.SIGNER,
    ),
    "key window": (
        _replace(issuer_key=lambda b: dataclasses.replace(b.issuer_key, valid_until_block=HEIGHT)),
        Link.ISSUER_KEY,
    ),
    "key roles": (
        _replace(issuer_key=lambda b: dataclasses.replace(b.issuer_key, roles=int(Role.AUDITOR))),
        Link.ISSUER_KEY,
    ),
    "department": (
        _replace(issuer_key=lambda b: dataclasses.replace(b.issuer_key, uscc="11100000000013338W")),
        Link.RECEIPT,
    ),
}


@pytest.mark.parametrize("piece", sorted(TAMPERED))
def test_each_tampered_piece_fails_its_link(piece: str) -> None:
    make, link = TAMPERED[piece]
    verdict = verify_bundle(make(), VALIDATORS, chain_id=CHAIN_ID, notary=NOTARY_ADDRESS)
    assert not verdict.valid
    assert link in {check.link for check in verdict.failures}, verdict.failures
    with pytest.raises(BundleInvalid):
        verdict.raise_for_failure()


def test_an_untrusted_validator_set_or_chain_fails() -> None:
    stranger = ValidatorSet.of([Validator(OTHER_KEY.public_key.to_bytes(), 1)])
    verdict = verify_bundle(BUNDLE, stranger, chain_id=CHAIN_ID)
    assert [check.link for check in verdict.failures] == [Link.CERTIFICATE]
    other_chain = verify_bundle(BUNDLE, VALIDATORS, chain_id=CHAIN_ID + 1)
    assert {Link.RECORD, Link.TRANSACTION, Link.CERTIFICATE} <= {
        check.link for check in other_chain.failures
    }
