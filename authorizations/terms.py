"""The authorization record, after ISO/IEC 27560 (consent records) and the Kantara consent
receipt: who the data is about (a salted SM3 commitment, never the identifier in clear),
which department holds it, which department may read it, which items, for which purpose,
on which legal basis, for how long and how many times.

Times are whole seconds since the Unix epoch (UTC). The window is half-open: an
authorization is live from ``valid_from`` inclusive until ``valid_until`` exclusive, so at
the very second ``valid_until`` it no longer is."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Any

from authorizations.catalogue import Catalogue
from authorizations.errors import InvalidTerms
from chain.primitives import Hash32
from sdk import data_receipts
from sdk.data_receipts import SUBJECT_COMMITMENT_PREFIX, SUBJECT_SALT_SIZE, TERMS_HASH_PREFIX
from sdk.data_receipts import terms_hash as terms_json_hash
from sdk.identifiers import InvalidIdentifier, validate_resident_id, validate_uscc

MAX_ITEMS = 32
"""Most data items one authorization may name."""

MAX_CITATION = 300
"""Longest citation of a legal basis."""

MAX_USES = 1_000_000
"""Largest number of uses an authorization may allow."""

_CITATION = re.compile(r"[^\x00-\x1f\x7f]+")


class SubjectKind(enum.StrEnum):
    """Whom the data is about."""

    CITIZEN = "citizen"
    """A natural person, by resident identity number (GB 11643)."""
    ENTERPRISE = "enterprise"
    """A legal person, by unified social credit code (GB 32100)."""


class LegalBasis(enum.StrEnum):
    """Why the recipient may read the data."""

    CONSENT = "consent"
    """The subject consented."""
    STATUTORY_DUTY = "statutory_duty"
    """A law obliges the recipient; no consent needed, but the basis is cited and the
    authorization is shown to the subject."""
    CONTRACT = "contract"
    """A contract the subject is party to; the subject signs as for consent."""
    INVESTIGATION = "investigation"
    """An investigation; no consent, the basis cited, and accesses may be disclosed to the
    subject only from a later date."""


class ConsentMethod(enum.StrEnum):
    """How consent was given."""

    ENTERPRISE_SIGNATURE = "enterprise_signature"
    """The enterprise signed the terms with its own SM2 key."""
    IDENTITY_PROVIDER = "identity_provider"
    """An identity provider attested that the citizen approved the terms."""
    NOT_REQUIRED = "not_required"
    """The legal basis needs no consent (statutory duty, investigation)."""


CONSENTING_BASES = frozenset({LegalBasis.CONSENT, LegalBasis.CONTRACT})
"""Legal bases that need the subject's own approval."""


def subject_commitment(kind: SubjectKind, identifier: str, salt: bytes) -> Hash32:
    """The salted SM3 commitment of a subject (:func:`sdk.data_receipts.subject_commitment`).
    Without the salt, guessing the identifier is no help."""
    return data_receipts.subject_commitment(kind.value, identifier, salt)


def canonical_subject(kind: SubjectKind, identifier: str) -> str:
    """The identifier in its one canonical form (check character verified); raises
    InvalidTerms."""
    try:
        if kind is SubjectKind.ENTERPRISE:
            return validate_uscc(identifier)
        return validate_resident_id(identifier)
    except InvalidIdentifier as exc:
        raise InvalidTerms(f"subject: {exc}") from None


@dataclass(frozen=True)
class AuthorizationTerms:
    """What an authorization permits: the part consent is given to (see
    :func:`terms_hash`)."""

    subject_kind: SubjectKind
    """Citizen or enterprise."""
    subject_commitment: Hash32
    """:func:`subject_commitment` of the subject's identifier."""
    controller: str
    """USCC of the department holding the data."""
    recipient: str
    """USCC of the department that may read it."""
    items: tuple[str, ...]
    """Data item codes from the catalogue, sorted, each once."""
    purpose: str
    """Purpose code from the catalogue."""
    legal_basis: LegalBasis
    """Why the recipient may read it."""
    basis_citation: str
    """The law, article or contract relied on (empty only for consent)."""
    valid_from: int
    """First second of the window."""
    valid_until: int
    """First second after the window."""
    max_uses: int | None = None
    """How many reads it allows; None: any number within the window."""
    disclose_after: int | None = None
    """Investigations only: accesses are shown to the subject from this second on."""
    catalogue_version: int = 1
    """The catalogue version ``items`` and ``purpose`` come from."""
    amends: str | None = None
    """The authorization these terms replace once granted (an amendment), if any."""

    def to_json(self) -> dict[str, Any]:
        """The terms as JSON values (hex commitment); ``amends`` only when set."""
        value: dict[str, Any] = {
            "subjectKind": self.subject_kind.value,
            "subjectCommitment": self.subject_commitment.hex(),
            "controller": self.controller,
            "recipient": self.recipient,
            "items": list(self.items),
            "purpose": self.purpose,
            "legalBasis": self.legal_basis.value,
            "basisCitation": self.basis_citation,
            "validFrom": self.valid_from,
            "validUntil": self.valid_until,
            "maxUses": self.max_uses,
            "discloseAfter": self.disclose_after,
            "catalogueVersion": self.catalogue_version,
        }
        if self.amends is not None:
            value["amends"] = self.amends
        return value

    @classmethod
    def from_json(cls, value: Any) -> AuthorizationTerms:
        """Parse :meth:`to_json` output; raises InvalidTerms (nothing is checked against a
        catalogue: see :func:`validate_terms`)."""
        try:
            commitment = bytes.fromhex(value["subjectCommitment"])
            if len(commitment) != 32:
                raise ValueError("subject commitment is 32 bytes")
            return cls(
                subject_kind=SubjectKind(value["subjectKind"]),
                subject_commitment=Hash32(commitment),
                controller=str(value["controller"]),
                recipient=str(value["recipient"]),
                items=tuple(str(item) for item in value["items"]),
                purpose=str(value["purpose"]),
                legal_basis=LegalBasis(value["legalBasis"]),
                basis_citation=str(value["basisCitation"]),
                valid_from=_int(value["validFrom"]),
                valid_until=_int(value["validUntil"]),
                max_uses=None if value.get("maxUses") is None else _int(value["maxUses"]),
                disclose_after=(
                    None if value.get("discloseAfter") is None else _int(value["discloseAfter"])
                ),
                catalogue_version=_int(value.get("catalogueVersion", 1)),
                amends=None if value.get("amends") is None else str(value["amends"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidTerms(f"not authorization terms: {exc}") from None


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{value!r} is not an integer")
    return value


def terms_hash(terms: AuthorizationTerms) -> Hash32:
    """SM3 of the prefix and the canonical JSON of the terms: the request R a subject
    approves, and what an amendment replaces."""
    return terms_json_hash(terms.to_json())


def validate_terms(terms: AuthorizationTerms, catalogue: Catalogue) -> AuthorizationTerms:
    """``terms`` if they can be granted as they are; raises InvalidTerms naming the first
    defect: a malformed USCC, an item or purpose not in the catalogue, items unsorted or
    repeated, a window that is empty, uses below one, a missing citation for a basis that
    needs one, or a disclosure date for anything but an investigation."""
    for role, code in (("controller", terms.controller), ("recipient", terms.recipient)):
        try:
            if validate_uscc(code) != code:
                raise InvalidTerms(f"{role} USCC must be given in canonical form")
        except InvalidIdentifier as exc:
            raise InvalidTerms(f"{role}: {exc}") from None
    if terms.catalogue_version != catalogue.version:
        raise InvalidTerms(f"terms use catalogue version {terms.catalogue_version}")
    if not 1 <= len(terms.items) <= MAX_ITEMS:
        raise InvalidTerms(f"name 1 to {MAX_ITEMS} data items")
    if list(terms.items) != sorted(set(terms.items)):
        raise InvalidTerms("data items must be sorted and each given once")
    for item in terms.items:
        catalogue.item(item)
    catalogue.purpose(terms.purpose)
    if not 0 <= terms.valid_from < terms.valid_until:
        raise InvalidTerms("the validity window must end after it starts")
    if terms.max_uses is not None and not 1 <= terms.max_uses <= MAX_USES:
        raise InvalidTerms(f"max_uses must be 1 to {MAX_USES}")
    citation = terms.basis_citation
    if len(citation) > MAX_CITATION or (citation and not _CITATION.fullmatch(citation)):
        raise InvalidTerms(f"the citation is at most {MAX_CITATION} printable characters")
    if terms.legal_basis is not LegalBasis.CONSENT and not citation.strip():
        raise InvalidTerms(f"a {terms.legal_basis.value} authorization must cite its basis")
    if terms.disclose_after is not None:
        if terms.legal_basis is not LegalBasis.INVESTIGATION:
            raise InvalidTerms("only an investigation may delay disclosure")
        if terms.disclose_after < terms.valid_from:
            raise InvalidTerms("disclosure cannot come before the window starts")
    return terms


def consent_method_for(terms: AuthorizationTerms) -> ConsentMethod:
    """The consent an authorization with ``terms`` needs: the enterprise's signature or an
    identity provider's attestation for consent and contract, none otherwise."""
    if terms.legal_basis not in CONSENTING_BASES:
        return ConsentMethod.NOT_REQUIRED
    if terms.subject_kind is SubjectKind.ENTERPRISE:
        return ConsentMethod.ENTERPRISE_SIGNATURE
    return ConsentMethod.IDENTITY_PROVIDER


__all__ = [
    "CONSENTING_BASES",
    "MAX_CITATION",
    "MAX_ITEMS",
    "MAX_USES",
    "SUBJECT_COMMITMENT_PREFIX",
    "SUBJECT_SALT_SIZE",
    "TERMS_HASH_PREFIX",
    "AuthorizationTerms",
    "ConsentMethod",
    "LegalBasis",
    "SubjectKind",
    "canonical_subject",
    "consent_method_for",
    "subject_commitment",
    "terms_hash",
    "validate_terms",
]
