"""Terms validation, subject commitments, and consent that proves itself: an enterprise's
signature, an identity provider's attestation, none for a statutory duty (which must cite
its basis); any change of the terms, the chain or the method breaks the proof."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st
from terms_samples import CITIZEN, ENTERPRISE, SALT, sample_terms

from authorizations.catalogue import load_catalogue
from authorizations.consent import (
    ConsentEvidence,
    approval_sign_bytes,
    consent_sign_bytes,
    verify_consent,
)
from authorizations.errors import ConsentInvalid, InvalidTerms
from authorizations.terms import (
    AuthorizationTerms,
    ConsentMethod,
    LegalBasis,
    SubjectKind,
    canonical_subject,
    subject_commitment,
    terms_hash,
    validate_terms,
)
from chain.crypto import PrivateKey, sm3

CATALOGUE = load_catalogue()
CHAIN_ID = 1337
ENTERPRISE_KEY = PrivateKey.from_bytes(sm3(b"authorizations tests: the enterprise"))
PROVIDER_KEY = PrivateKey.from_bytes(sm3(b"authorizations tests: the identity provider"))


def enterprise_consent(terms: AuthorizationTerms, chain_id: int = CHAIN_ID) -> ConsentEvidence:
    return ConsentEvidence(
        ConsentMethod.ENTERPRISE_SIGNATURE,
        "enterprise-client",
        ENTERPRISE_KEY.public_key.to_bytes(),
        ENTERPRISE_KEY.sign(consent_sign_bytes(chain_id, terms)),
    )


def citizen_terms() -> AuthorizationTerms:
    return sample_terms(
        subject_kind=SubjectKind.CITIZEN,
        subject_commitment=subject_commitment(SubjectKind.CITIZEN, CITIZEN, SALT),
    )


def test_sample_terms_are_valid_and_round_trip() -> None:
    terms = validate_terms(sample_terms(max_uses=2), CATALOGUE)
    assert AuthorizationTerms.from_json(terms.to_json()) == terms
    assert terms_hash(AuthorizationTerms.from_json(terms.to_json())) == terms_hash(terms)


@pytest.mark.parametrize(
    "changes",
    [
        {"items": ("license.nothing",)},
        {"items": ()},
        {"items": ("license.metadata", "credit")},
        {"items": ("credit", "credit")},
        {"purpose": "fishing"},
        {"valid_until": 1_800_000_000},
        {"max_uses": 0},
        {"recipient": "91350100M000100Y44"},
        {"legal_basis": LegalBasis.STATUTORY_DUTY},
        {"legal_basis": LegalBasis.CONSENT, "disclose_after": 1_800_000_100},
        {"basis_citation": "line\nbreak", "legal_basis": LegalBasis.CONTRACT},
        {"catalogue_version": 2},
    ],
)
def test_invalid_terms_are_refused(changes: dict[str, object]) -> None:
    with pytest.raises(InvalidTerms):
        validate_terms(sample_terms(**changes), CATALOGUE)


def test_subject_identifiers_are_checked() -> None:
    assert canonical_subject(SubjectKind.ENTERPRISE, ENTERPRISE.lower()) == ENTERPRISE
    with pytest.raises(InvalidTerms):
        canonical_subject(SubjectKind.CITIZEN, CITIZEN[:-1] + "1")


@given(salt=st.binary(min_size=16, max_size=16), other=st.binary(min_size=16, max_size=16))
def test_commitments_depend_on_salt_and_kind(salt: bytes, other: bytes) -> None:
    one = subject_commitment(SubjectKind.ENTERPRISE, ENTERPRISE, salt)
    assert (one == subject_commitment(SubjectKind.ENTERPRISE, ENTERPRISE, other)) is (salt == other)
    assert one != subject_commitment(SubjectKind.CITIZEN, ENTERPRISE, salt)


def test_enterprise_signature_proves_consent() -> None:
    terms = sample_terms()
    verify_consent(terms, enterprise_consent(terms), chain_id=CHAIN_ID)


def test_consent_to_other_terms_or_chain_does_not_verify() -> None:
    terms = sample_terms()
    evidence = enterprise_consent(terms)
    with pytest.raises(ConsentInvalid):
        verify_consent(sample_terms(max_uses=100), evidence, chain_id=CHAIN_ID)
    with pytest.raises(ConsentInvalid):
        verify_consent(
            dataclasses.replace(terms, purpose="subsidy.eligibility"), evidence, chain_id=CHAIN_ID
        )
    with pytest.raises(ConsentInvalid):
        verify_consent(terms, enterprise_consent(terms, chain_id=1), chain_id=CHAIN_ID)


def test_identity_provider_attests_a_citizens_approval() -> None:
    terms = citizen_terms()
    evidence = ConsentEvidence(
        ConsentMethod.IDENTITY_PROVIDER,
        "idp",
        PROVIDER_KEY.public_key.to_bytes(),
        PROVIDER_KEY.sign(approval_sign_bytes(CHAIN_ID, terms)),
    )
    verify_consent(terms, evidence, chain_id=CHAIN_ID)
    # An enterprise-style signature is no attestation for a citizen.
    with pytest.raises(ConsentInvalid):
        verify_consent(terms, enterprise_consent(terms), chain_id=CHAIN_ID)
    # The attestation names the subject: it does not carry over to another subject.
    other = dataclasses.replace(
        terms, subject_commitment=subject_commitment(SubjectKind.CITIZEN, CITIZEN, bytes(16))
    )
    with pytest.raises(ConsentInvalid):
        verify_consent(other, evidence, chain_id=CHAIN_ID)


def test_statutory_duty_needs_no_consent_but_cites_its_basis() -> None:
    terms = validate_terms(
        sample_terms(
            legal_basis=LegalBasis.STATUTORY_DUTY,
            basis_citation="《优化营商环境条例》第三十七条",
        ),
        CATALOGUE,
    )
    verify_consent(terms, ConsentEvidence(ConsentMethod.NOT_REQUIRED), chain_id=CHAIN_ID)
    with pytest.raises(ConsentInvalid):
        verify_consent(terms, enterprise_consent(terms), chain_id=CHAIN_ID)


def test_investigation_may_delay_disclosure() -> None:
    terms = sample_terms(
        legal_basis=LegalBasis.INVESTIGATION,
        basis_citation="《行政处罚法》第五十四条",
        disclose_after=1_800_086_400,
    )
    validate_terms(terms, CATALOGUE)
    with pytest.raises(InvalidTerms):
        validate_terms(dataclasses.replace(terms, disclose_after=1), CATALOGUE)


def test_an_amendment_names_what_it_replaces_in_what_is_consented_to() -> None:
    plain = sample_terms()
    amending = dataclasses.replace(plain, amends="7c1f2a8e-0000-4000-8000-000000000001")
    assert "amends" not in plain.to_json() and amending.to_json()["amends"] == amending.amends
    assert AuthorizationTerms.from_json(amending.to_json()) == amending
    assert terms_hash(amending) != terms_hash(plain)
    with pytest.raises(ConsentInvalid):
        verify_consent(amending, enterprise_consent(plain), chain_id=CHAIN_ID)
