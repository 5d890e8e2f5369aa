"""Request and response bodies of ``/v1/credit`` (responses that are views of
:mod:`registry.credit.public_reads` and :mod:`registry.credit.authority_profile` use their
dataclasses directly). Requests are bounded here: every string, list and mapping has a maximum
size."""

from __future__ import annotations

import datetime
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from credit.records import (
    CommitmentStatus,
    CreditCommitment,
    ListEntry,
    ListType,
    NaturalKey,
)
from credit.subjects import RESIDENT_ID_TYPES, Subject, SubjectCategory
from registry.credit.lifecycle import MAX_REASON
from registry.credit.repair import MAX_EVIDENCE
from registry.credit.signing import MAX_ROOT_EVENTS, MAX_SIGNATURES
from sdk.identifiers import InvalidIdentifier, validate_resident_id, validate_uscc

MAX_TEXT = 2_000
"""Longest free text field."""

MAX_NAME = 200
"""Longest name or number."""

MAX_SUBJECT = 64
"""Longest subject identifier in a query."""

MAX_BASIS_RECORDS = 100
"""Most records a list entry may rest on."""

RECORD_ID_PATTERN = r"^[0-9a-fA-F]{64}$"
"""A record identity: 64 hex digits."""

_Strict = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _uscc(value: str) -> str:
    try:
        return validate_uscc(value)
    except InvalidIdentifier as error:
        raise ValueError(str(error)) from None


class SubjectIn(BaseModel):
    """The 行政相对人 of a list entry or commitment."""

    model_config = _Strict

    category: SubjectCategory
    name: str = Field(min_length=1, max_length=MAX_NAME)
    uscc: str | None = Field(default=None, max_length=18, description="organisations")
    legal_representative: str | None = Field(default=None, max_length=MAX_NAME)
    id_type: str | None = Field(default=None, max_length=32, description="natural persons")
    id_number: str | None = Field(
        default=None, max_length=MAX_SUBJECT, description="natural persons; never stored"
    )

    def to_subject(self) -> Subject:
        """The domain subject; raises ValueError when its codes do not check."""
        natural = self.category is SubjectCategory.NATURAL_PERSON
        if natural:
            if not self.id_number or not self.id_type:
                raise ValueError("a natural person is named by id_type and id_number")
            number = self.id_number
            if self.id_type in RESIDENT_ID_TYPES:
                try:
                    number = validate_resident_id(number)
                except InvalidIdentifier as error:
                    raise ValueError(str(error)) from None
            return Subject(
                self.category, self.name, None, None, None, None, None, None,
                None, None, None, self.id_type, number,
            )  # fmt: skip
        if not self.uscc:
            raise ValueError("an organisation or individual business is named by its USCC")
        return Subject(
            self.category, self.name, _uscc(self.uscc), None, None, None, None, None,
            self.legal_representative, None, None, None, None,
        )  # fmt: skip


class NaturalKeyIn(BaseModel):
    """A record named by its authority's USCC and decision number."""

    model_config = _Strict

    authority_uscc: str = Field(max_length=18)
    decision_number: str = Field(min_length=1, max_length=MAX_NAME)

    _check = field_validator("authority_uscc")(_uscc)


class ListEntryCreate(BaseModel):
    """``POST /v1/credit/list-entries``: a subject entered into a red or black list."""

    model_config = _Strict

    subject: SubjectIn
    list_type: ListType
    list_name: str = Field(min_length=1, max_length=MAX_NAME)
    decision_number: str = Field(min_length=1, max_length=MAX_NAME)
    reason: str = Field(min_length=1, max_length=MAX_TEXT)
    legal_basis: str = Field(min_length=1, max_length=MAX_TEXT)
    entry_date: datetime.date
    planned_exit_date: datetime.date | None = None
    authority: str = Field(min_length=1, max_length=MAX_NAME)
    authority_uscc: str = Field(max_length=18)
    basis_records: list[NaturalKeyIn] = Field(default_factory=list, max_length=MAX_BASIS_RECORDS)

    _check = field_validator("authority_uscc")(_uscc)

    def to_entry(self) -> ListEntry:
        """The domain record; raises ValueError."""
        if self.planned_exit_date is not None and self.planned_exit_date <= self.entry_date:
            raise ValueError("the planned exit is not after the entry")
        return ListEntry(
            subject=self.subject.to_subject(),
            list_type=self.list_type,
            list_name=self.list_name,
            decision_number=self.decision_number,
            reason=self.reason,
            legal_basis=self.legal_basis,
            entry_date=self.entry_date,
            planned_exit_date=self.planned_exit_date,
            authority=self.authority,
            authority_uscc=self.authority_uscc,
            basis_records=tuple(
                NaturalKey(key.authority_uscc, key.decision_number) for key in self.basis_records
            ),
        )


class CommitmentCreate(BaseModel):
    """``POST /v1/credit/commitments``: a 信用承诺 the subject signed, pending."""

    model_config = _Strict

    subject: SubjectIn
    commitment_number: str = Field(min_length=1, max_length=MAX_NAME)
    matter: str = Field(min_length=1, max_length=MAX_TEXT)
    content: str = Field(min_length=1, max_length=MAX_TEXT)
    signed_on: datetime.date
    due_on: datetime.date | None = None
    authority: str = Field(min_length=1, max_length=MAX_NAME)
    authority_uscc: str = Field(max_length=18)

    _check = field_validator("authority_uscc")(_uscc)

    def to_commitment(self) -> CreditCommitment:
        """The domain record; raises ValueError."""
        if self.due_on is not None and self.due_on < self.signed_on:
            raise ValueError("due_on is before signed_on")
        return CreditCommitment(
            subject=self.subject.to_subject(),
            commitment_number=self.commitment_number,
            matter=self.matter,
            content=self.content,
            signed_on=self.signed_on,
            due_on=self.due_on,
            status=CommitmentStatus.PENDING,
            authority=self.authority,
            authority_uscc=self.authority_uscc,
        )


class ReasonIn(BaseModel):
    """A step that needs a reason (withdraw, stop publishing)."""

    model_config = _Strict

    reason: str = Field(min_length=1, max_length=MAX_REASON)


class ListExitIn(ReasonIn):
    """``POST /v1/credit/records/{id}/list-exit``."""

    exit_date: datetime.date


class SettleIn(ReasonIn):
    """``POST /v1/credit/records/{id}/settle``: a commitment fulfilled or broken."""

    status: Literal["fulfilled", "broken"]


EventId = Annotated[str, StringConstraints(min_length=1, max_length=36)]
"""An event id (a UUID)."""


class SignaturesIn(BaseModel):
    """``POST /v1/credit/events/signatures``, in one of two forms:

    - ``signatures``: event id → base64 DER SM2 signature of
      'lianxin/department-commitment/v1' + 0x00 + chain id (8 bytes) + the commitment;
    - ``events`` and ``department_signature``: the events signed at once, one base64 DER
      SM2 signature of 'lianxin/department-commitments/v1' + 0x00 + the chain id and the
      number of events (8 bytes big-endian each) + the SM3 Merkle root (RFC 6962 style) of
      their commitments in the listed order."""

    model_config = ConfigDict(extra="forbid")

    signatures: dict[str, str] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_SIGNATURES,
        description="one signature per event (up to 1,000)",
    )
    events: list[EventId] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_ROOT_EVENTS,
        description="the events signed at once, in the order of the signed Merkle tree "
        "(up to 100,000)",
    )
    department_signature: str | None = Field(
        default=None,
        max_length=200,
        description="with events: the one signature over the root of their commitments",
    )

    @field_validator("signatures")
    @classmethod
    def _bounded(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for event_id, signature in (value or {}).items():
            if len(event_id) > 36 or len(signature) > 200:
                raise ValueError("event ids are UUIDs and signatures at most 200 characters")
        return value

    @model_validator(mode="after")
    def _one_form(self) -> Self:
        per_event = self.signatures is not None
        at_once = self.events is not None or self.department_signature is not None
        if per_event == at_once:
            raise ValueError("give either signatures, or events with department_signature")
        if at_once and (self.events is None or self.department_signature is None):
            raise ValueError("events and department_signature go together")
        return self


class RepairApply(BaseModel):
    """``POST /v1/credit/repairs``: a subject's application, filed for it."""

    model_config = _Strict

    record_id: str = Field(pattern=RECORD_ID_PATTERN)
    subject: str = Field(min_length=1, max_length=MAX_SUBJECT, description="its identifier")
    evidence: str = Field(min_length=1, max_length=MAX_EVIDENCE)
    obligations_fulfilled: bool


class RepairDecide(ReasonIn):
    """``POST /v1/credit/repairs/{id}/decision``."""

    approve: bool


class CheckIn(BaseModel):
    """``POST /v1/credit/check``."""

    model_config = _Strict

    subject: str = Field(min_length=1, max_length=MAX_SUBJECT, description="USCC or ID number")
    activity: str = Field(min_length=1, max_length=100, description="e.g. government_procurement")
    on: datetime.date


class ProfileIn(BaseModel):
    """``POST /v1/credit/profiles/{public,authority}`` (POST: an identity number never
    travels in a URL, which logs keep)."""

    model_config = _Strict

    subject: str = Field(min_length=1, max_length=MAX_SUBJECT)
    at: datetime.datetime | None = Field(default=None, description="default: now")

    @field_validator("at")
    @classmethod
    def _aware(cls, value: datetime.datetime | None) -> datetime.datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("at must carry its time zone")
        return value


class PendingEventOut(BaseModel):
    """An event waiting for the department's signature."""

    id: str
    kind: str
    record_id: str | None
    commitment: str


class EventsOut(BaseModel):
    """Events made by a request, to be signed (``POST /v1/credit/events/signatures``)."""

    events: list[str] = Field(description="ids of the events the request made")
    record_ids: list[str] = Field(default_factory=list, description="records concerned")


class ImportOut(BaseModel):
    """The answer of an import."""

    published: int
    corrected: int
    unchanged: int
    report: dict[str, Any]
    report_hash: str | None
    report_event_id: str | None
    awaiting_signature: int = Field(description="events of this client waiting to be signed")


class SignedOut(BaseModel):
    """Events handed to the anchoring pipeline: event id → notarized record id."""

    notarized: dict[str, str]
