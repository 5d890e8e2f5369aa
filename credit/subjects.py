"""Subjects of public-credit records and how they are shown.

Organisations and individual businesses are named by their unified social credit code
(GB 32100), natural persons by their citizen identity number (GB 11643); both checks are
those of :mod:`sdk.identifiers`. A natural person's identity number and name are masked
wherever a record is shown, and never leave in clear for the chain (see
:mod:`credit.commitments`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = [
    "RESIDENT_ID_TYPES",
    "Subject",
    "SubjectCategory",
    "mask_identifier",
    "mask_person_name",
]

RESIDENT_ID_TYPES = frozenset({"身份证", "居民身份证", "中华人民共和国居民身份证", "001"})
"""Values of 证件类型 that mean a citizen identity number (checked with GB 11643); ``001``
is the code of the national data standard."""

MASK_CHARACTER = "*"
"""The character shown in place of a hidden character."""

IDENTIFIER_SHOWN_HEAD = 4
"""Leading characters of a natural person's identifier left visible (the province and
city of registration)."""

IDENTIFIER_SHOWN_TAIL = 4
"""Trailing characters of a natural person's identifier left visible."""


class SubjectCategory(enum.StrEnum):
    """行政相对人类别 of the national template."""

    ORGANISATION = "法人及非法人组织"
    """Legal persons and other organisations, named by their USCC."""
    NATURAL_PERSON = "自然人"
    """A natural person, named by an identity document."""
    INDIVIDUAL_BUSINESS = "个体工商户"
    """An individual business, named by its USCC (or older registration number)."""


def mask_identifier(value: str) -> str:
    """A natural person's identifier as shown: the first and last four characters, the rest
    masked (``4403**********123X``). Short identifiers keep at most a third of their
    characters at each end."""
    keep = min(IDENTIFIER_SHOWN_HEAD, len(value) // 3)
    tail = min(IDENTIFIER_SHOWN_TAIL, len(value) // 3)
    hidden = len(value) - keep - tail
    return value[:keep] + MASK_CHARACTER * hidden + (value[len(value) - tail :] if tail else "")


def mask_person_name(name: str) -> str:
    """A natural person's name as shown: the first character (the surname) and, from three
    characters on, the last, the rest masked (``张*``, ``张*明``, ``欧阳**锋``)."""
    if len(name) <= 1:
        return MASK_CHARACTER * len(name)
    if len(name) == 2:
        return name[0] + MASK_CHARACTER
    return name[0] + MASK_CHARACTER * (len(name) - 2) + name[-1]


@dataclass(frozen=True)
class Subject:
    """The 行政相对人 of a record, as the national template describes it. Validated when
    built by :mod:`credit.validation`; codes are in canonical (upper-case, half-width) form."""

    category: SubjectCategory
    """行政相对人类别."""
    name: str
    """行政相对人名称: the organisation's registered name, or the person's name."""
    uscc: str | None
    """行政相对人代码_1: unified social credit code (organisations, individual businesses)."""
    registration_number: str | None
    """行政相对人代码_2: 工商注册号 (older registrations without a USCC)."""
    organisation_code: str | None
    """行政相对人代码_3: 组织机构代码."""
    tax_number: str | None
    """行政相对人代码_4: 税务登记号."""
    institution_number: str | None
    """行政相对人代码_5: 事业单位证书号."""
    social_organisation_number: str | None
    """行政相对人代码_6: 社会组织登记证号."""
    legal_representative: str | None
    """法定代表人 (organisations) or 经营者 (individual businesses)."""
    legal_representative_id_type: str | None
    """法定代表人证件类型."""
    legal_representative_id: str | None
    """法定代表人证件号码; never shown or sent to the chain in clear."""
    id_type: str | None
    """证件类型 of a natural person."""
    id_number: str | None
    """证件号码 of a natural person; never shown or sent to the chain in clear."""

    @property
    def is_natural_person(self) -> bool:
        """Whether the subject is a natural person (whose name is masked too)."""
        return self.category is SubjectCategory.NATURAL_PERSON

    def display_name(self) -> str:
        """The name as shown to the public: masked for a natural person."""
        return mask_person_name(self.name) if self.is_natural_person else self.name

    def display_identifier(self) -> str | None:
        """The identifier as shown to the public: the USCC (or first older code) of an
        organisation in full, a natural person's identity number masked."""
        if self.is_natural_person:
            return mask_identifier(self.id_number) if self.id_number else None
        for code in (
            self.uscc,
            self.registration_number,
            self.organisation_code,
            self.tax_number,
            self.institution_number,
            self.social_organisation_number,
        ):
            if code:
                return code
        return None
