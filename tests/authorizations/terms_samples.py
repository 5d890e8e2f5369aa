"""Sample terms of the authorizations tests (valid USCCs and a resident ID from the
published check-character examples)."""

from __future__ import annotations

import dataclasses
from typing import Any

from authorizations.terms import (
    AuthorizationTerms,
    LegalBasis,
    SubjectKind,
    subject_commitment,
)

CONTROLLER = "11100000000013338W"
"""The department holding the data."""
RECIPIENT = "91350100M000100Y43"
"""The department allowed to read it."""
OTHER_DEPARTMENT = "11350102MB00010016"
"""A department with no authorization."""
ENTERPRISE = "11350102MB00010029"
"""The enterprise the data is about."""
CITIZEN = "11010519491231002X"
"""The citizen the data is about."""
SALT = bytes(range(16))
"""A fixed subject salt."""
START = 1_800_000_000
"""Start of the sample window."""
END = START + 3_600
"""First second after the sample window."""


def sample_terms(**changes: Any) -> AuthorizationTerms:
    """Consent terms of an enterprise letting RECIPIENT read license metadata for a food
    business approval during one hour; ``changes`` replace fields."""
    terms = AuthorizationTerms(
        subject_kind=SubjectKind.ENTERPRISE,
        subject_commitment=subject_commitment(SubjectKind.ENTERPRISE, ENTERPRISE, SALT),
        controller=CONTROLLER,
        recipient=RECIPIENT,
        items=("license.metadata",),
        purpose="approval.food-business-license",
        legal_basis=LegalBasis.CONSENT,
        basis_citation="",
        valid_from=START,
        valid_until=END,
    )
    return dataclasses.replace(terms, **changes)
