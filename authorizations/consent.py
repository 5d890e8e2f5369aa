"""Consent that can be proven to anyone holding the signer's public key.

- An enterprise signs :func:`consent_sign_bytes` of the terms hash with its own SM2 key.
- A citizen's approval is attested by an identity provider, which signs
  :func:`approval_sign_bytes`: "subject S approved request R", S the subject commitment and
  R the terms hash.
- Statutory duty and investigation need no consent: their evidence is empty, and the
  terms cite the basis instead (:func:`authorizations.terms.validate_terms`).

Both messages carry their own prefix and the chain id, so a signature made for one purpose
or one chain is worth nothing for another."""

from __future__ import annotations

from dataclasses import dataclass

from authorizations.errors import ConsentInvalid
from authorizations.terms import (
    AuthorizationTerms,
    ConsentMethod,
    consent_method_for,
    terms_hash,
)
from chain.crypto import PublicKey
from chain.errors import ChainError
from sdk import data_receipts
from sdk.data_receipts import APPROVAL_PREFIX, CONSENT_PREFIX


def consent_sign_bytes(chain_id: int, terms: AuthorizationTerms) -> bytes:
    """What an enterprise signs to consent to ``terms`` on chain ``chain_id``."""
    return data_receipts.consent_sign_bytes(chain_id, terms_hash(terms))


def approval_sign_bytes(chain_id: int, terms: AuthorizationTerms) -> bytes:
    """What an identity provider signs: subject S (the commitment) approved request R (the
    terms hash), on chain ``chain_id``."""
    return data_receipts.approval_sign_bytes(chain_id, terms.subject_commitment, terms_hash(terms))


@dataclass(frozen=True)
class ConsentEvidence:
    """How consent was given, and what proves it."""

    method: ConsentMethod
    """Enterprise signature, identity-provider attestation, or none needed."""
    signer: str = ""
    """The registry client id of the signer (the enterprise's, or the identity
    provider's); empty when none is needed."""
    public_key: bytes = b""
    """The signer's SM2 public key (65 bytes, uncompressed)."""
    signature: bytes = b""
    """DER SM2 signature over the method's message."""

    def to_json(self) -> dict[str, str]:
        """The evidence as JSON values (hex bytes)."""
        return {
            "method": self.method.value,
            "signer": self.signer,
            "publicKey": self.public_key.hex(),
            "signature": self.signature.hex(),
        }


def verify_consent(terms: AuthorizationTerms, evidence: ConsentEvidence, *, chain_id: int) -> None:
    """Check that ``evidence`` proves the consent ``terms`` need (nothing for a basis
    that needs none); raises ConsentInvalid. Whether ``evidence.public_key`` is the key of
    the enterprise, or of an identity provider, is for the caller to establish: this proves
    only that the key signed."""
    needed = consent_method_for(terms)
    if evidence.method is not needed:
        raise ConsentInvalid(
            f"{terms.legal_basis.value} for a {terms.subject_kind.value} needs "
            f"{needed.value}, not {evidence.method.value}"
        )
    if needed is ConsentMethod.NOT_REQUIRED:
        if evidence.signature or evidence.public_key:
            raise ConsentInvalid("no consent is needed: give no signature")
        return
    if needed is ConsentMethod.ENTERPRISE_SIGNATURE:
        message = consent_sign_bytes(chain_id, terms)
    else:
        message = approval_sign_bytes(chain_id, terms)
    try:
        PublicKey.from_bytes(evidence.public_key).verify(evidence.signature, message)
    except (ChainError, ValueError):
        raise ConsentInvalid(
            f"the {needed.value} does not verify for these terms on chain {chain_id}"
        ) from None


__all__ = [
    "APPROVAL_PREFIX",
    "CONSENT_PREFIX",
    "ConsentEvidence",
    "approval_sign_bytes",
    "consent_sign_bytes",
    "verify_consent",
]
