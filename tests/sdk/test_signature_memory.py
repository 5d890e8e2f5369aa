"""Department signatures that verified are remembered by exactly what was verified, so the
records of a bulk request signed once pay one SM2 verification between them; a forged
signature, path or key is never taken for a remembered one."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_bulk_signature import committed, record_claim
from test_bundle import CHAIN_ID, NOTARY_ADDRESS, VALIDATORS, make_bundle
from test_department_bundle import DEPARTMENT_KEY, DEPARTMENT_NAME, DEPARTMENT_USCC, key_claim

from chain.crypto import PrivateKey, PublicKey
from chain.errors import ChainError
from sdk.bundle import (
    DEPARTMENT_ROOT_SIGNATURE_PREFIX,
    BundleVerdict,
    DepartmentClaim,
    Link,
    ProofBundle,
    verify_bundle,
)
from sdk.bundle_evidence import VerifiedEvidence
from sdk.record_signing import sign_records
from sdk.signature_memory import SignatureMemory

KEY = PrivateKey.generate()
MESSAGE = b"lianxin/test-message"
SIGNATURE = KEY.sign(MESSAGE)
PUBLIC = KEY.public_key.to_bytes()


class CountingVerify:
    """Counts SM2 verifications made through :meth:`PublicKey.verify` (of messages starting
    with ``prefix``)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, prefix: bytes = b"") -> None:
        self.calls = 0
        original = PublicKey.verify

        def counted(key: PublicKey, signature: bytes, message: bytes, *args: object) -> None:
            if message.startswith(prefix):
                self.calls += 1
            original(key, signature, message, *args)  # type: ignore[arg-type]

        monkeypatch.setattr(PublicKey, "verify", counted)


def request_bundles() -> list[ProofBundle]:
    """The bundles of every record of ONE bulk request, sharing its one signature."""
    records = committed()
    signed = sign_records(DEPARTMENT_KEY, CHAIN_ID, records)
    return [
        make_bundle(
            record_claim(index, record),
            DepartmentClaim(
                signed.signature, DEPARTMENT_NAME, key_claim(), request_proof=signed.proof(index)
            ),
        )
        for index, record in enumerate(records)
    ]


def check(bundle: ProofBundle, verified: VerifiedEvidence | None) -> BundleVerdict:
    return verify_bundle(
        bundle, VALIDATORS, chain_id=CHAIN_ID, notary=NOTARY_ADDRESS, verified=verified
    )


def test_the_records_of_a_bulk_request_pay_one_department_verification(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bundles = request_bundles()
    verified = VerifiedEvidence()
    counting = CountingVerify(monkeypatch, DEPARTMENT_ROOT_SIGNATURE_PREFIX)
    for bundle in bundles:
        verdict = check(bundle, verified)
        assert verdict.valid, verdict.failures
        assert verdict.signed_by is not None and verdict.signed_by.uscc == DEPARTMENT_USCC
    assert counting.calls == 1
    assert len(verified.signatures) == 1
    assert check(bundles[0], None).valid
    assert counting.calls == 2  # without the memory, checked again


def _with(bundle: ProofBundle, **changes: object) -> ProofBundle:
    assert bundle.department is not None
    return dataclasses.replace(bundle, department=dataclasses.replace(bundle.department, **changes))


def test_a_forgery_with_the_remembered_signature_still_fails() -> None:
    bundles = request_bundles()
    verified = VerifiedEvidence()
    assert all(check(bundle, verified).valid for bundle in bundles)
    first, second = bundles[0], bundles[1]
    assert first.department is not None and second.department is not None
    forgeries = {
        "path of another record": _with(first, request_proof=second.department.request_proof),
        "no path (as if signed alone)": _with(first, request_proof=None),
        "signature of another key": _with(first, signature=PrivateKey.generate().sign(b"anything")),
    }
    for name, forged in forgeries.items():
        for _ in range(2):  # a failure is never remembered: the second try fails the same way
            verdict = check(forged, verified)
            assert [c.link for c in verdict.failures] == [Link.DEPARTMENT], name
    assert len(verified.signatures) == 1


def test_a_failing_signature_is_checked_every_time(monkeypatch: pytest.MonkeyPatch) -> None:
    memory = SignatureMemory()
    counting = CountingVerify(monkeypatch)
    for _ in range(3):
        with pytest.raises(ChainError):
            memory.verify(PUBLIC, SIGNATURE, MESSAGE + b"!")
    assert counting.calls == 3 and len(memory) == 0
    memory.verify(PUBLIC, SIGNATURE, MESSAGE)
    memory.verify(PUBLIC, SIGNATURE, MESSAGE)
    assert counting.calls == 4 and len(memory) == 1


def test_the_memory_is_bounded() -> None:
    memory = SignatureMemory(capacity=3)
    messages = [f"message {n}".encode() for n in range(5)]
    for message in messages:
        memory.verify(PUBLIC, KEY.sign(message), message)
    assert len(memory) == 3


@settings(max_examples=60, deadline=None)
@given(
    position=st.integers(min_value=0),
    flip=st.integers(min_value=1, max_value=255),
    part=st.sampled_from(["message", "signature", "key"]),
    genuine_first=st.booleans(),
)
def test_the_memory_agrees_with_a_direct_verification(
    position: int, flip: int, part: str, genuine_first: bool
) -> None:
    memory = SignatureMemory()
    if genuine_first:
        memory.verify(PUBLIC, SIGNATURE, MESSAGE)
    message, signature, public = bytearray(MESSAGE), bytearray(SIGNATURE), bytearray(PUBLIC)
    target = {"message": message, "signature": signature, "key": public}[part]
    target[position % len(target)] ^= flip
    try:
        PublicKey.from_bytes(bytes(public)).verify(bytes(signature), bytes(message))
        direct = True
    except ChainError:
        direct = False
    try:
        memory.verify(bytes(public), bytes(signature), bytes(message))
        remembered = True
    except ChainError:
        remembered = False
    assert remembered is direct is False
