"""The records of public credit (公共信用信息): 行政许可 and 行政处罚 decisions with the full
双公示 field set, list entries and exits (红名单, 严重失信主体名单), credit commitments
(信用承诺), and the lifecycle events anchored for each of them.

A record's natural key is the deciding authority's USCC and the decision number (决定书文号);
its identity (:func:`record_id`) is derived from the kind and the natural key only, so
importing the same file again yields the same identities, and a changed row is a correction
of the same record (:mod:`credit.corrections`).
"""

from __future__ import annotations

import datetime
import enum
import json
from dataclasses import dataclass
from decimal import Decimal

from chain.crypto import sm3
from chain.primitives import Hash32
from credit.subjects import Subject

__all__ = [
    "CommitmentStatus",
    "CreditCommitment",
    "CreditRecord",
    "LicenseCategory",
    "LicenseStatus",
    "LicensingRecord",
    "LifecycleEvent",
    "LifecycleEventKind",
    "ListEntry",
    "ListExit",
    "ListType",
    "NaturalKey",
    "PenaltyCategory",
    "PenaltyRecord",
    "RecordKind",
    "content_hash",
    "record_fields",
    "record_id",
    "record_kind",
]

RECORD_ID_PREFIX = b"lianxin/credit/record/v1\x00"
"""Domain separation of record identities."""

CONTENT_HASH_PREFIX = b"lianxin/credit/content/v1\x00"
"""Domain separation of a record version's content hash."""


class RecordKind(enum.StrEnum):
    """The kinds of credit record."""

    PENALTY = "penalty"
    """行政处罚."""
    LICENSING = "licensing"
    """行政许可."""
    LIST_ENTRY = "list_entry"
    """An entry into a red or black list."""
    COMMITMENT = "commitment"
    """A 信用承诺."""


class PenaltyCategory(enum.StrEnum):
    """处罚类别 of the national template (行政处罚法 art. 9 and the template's extras)."""

    WARNING = "警告"
    """警告."""
    CIRCULATED_CRITICISM = "通报批评"
    """通报批评."""
    FINE = "罚款"
    """罚款."""
    CONFISCATE_GAINS = "没收违法所得"
    """没收违法所得."""
    CONFISCATE_PROPERTY = "没收非法财物"
    """没收非法财物."""
    SUSPEND_LICENSE = "暂扣许可证件"
    """暂扣许可证件."""
    LOWER_QUALIFICATION = "降低资质等级"
    """降低资质等级."""
    REVOKE_LICENSE = "吊销许可证件"
    """吊销许可证件."""
    RESTRICT_BUSINESS = "限制开展生产经营活动"
    """限制开展生产经营活动."""
    ORDER_SUSPENSION = "责令停产停业"
    """责令停产停业."""
    ORDER_CLOSURE = "责令关闭"
    """责令关闭."""
    RESTRICT_PRACTICE = "限制从业"
    """限制从业."""
    DETENTION = "行政拘留"
    """行政拘留."""
    OTHER = "其他"
    """其他."""


class LicenseCategory(enum.StrEnum):
    """许可类别 of the national template."""

    ORDINARY = "普通"
    """普通."""
    FRANCHISE = "特许"
    """特许."""
    RECOGNITION = "认可"
    """认可."""
    APPROVAL = "核准"
    """核准."""
    REGISTRATION = "登记"
    """登记."""
    OTHER = "其他"
    """其他."""


class LicenseStatus(enum.StrEnum):
    """当前状态 of a licensing record (the template's codes 1 and 2)."""

    VALID = "1"
    """有效."""
    INVALID = "2"
    """无效."""


class ListType(enum.StrEnum):
    """Lists a subject can be entered into."""

    BLACK = "black"
    """严重失信主体名单."""
    RED = "red"
    """守信激励对象名单 (红名单)."""


class CommitmentStatus(enum.StrEnum):
    """Where a 信用承诺 stands."""

    PENDING = "pending"
    """Signed, not yet due."""
    FULFILLED = "fulfilled"
    """The subject did what it committed to."""
    BROKEN = "broken"
    """The subject broke the commitment (a failure in its own right)."""


class LifecycleEventKind(enum.StrEnum):
    """Events anchored in a record's life, each signed by the publishing department."""

    PUBLISH = "publish"
    """The record is published."""
    CORRECT = "correct"
    """Fields of the record are corrected (the previous version stays in the history)."""
    WITHDRAW = "withdraw"
    """The decision was overturned (撤销); display stops."""
    REPAIR = "repair"
    """A credit repair (信用修复) was approved."""
    STOP_PUBLISHING = "stop_publishing"
    """Public display stops (after a repair, or on the authority's decision)."""
    LIST_ENTRY = "list_entry"
    """The subject enters a list."""
    LIST_EXIT = "list_exit"
    """The subject leaves a list."""


@dataclass(frozen=True)
class NaturalKey:
    """What names a record across versions: who decided, and the decision number."""

    authority_uscc: str
    """USCC of the deciding authority (处罚机关/许可机关/认定单位)."""
    decision_number: str
    """决定书文号 / 许可决定文书号 / 认定文号."""


@dataclass(frozen=True)
class PenaltyRecord:
    """A 行政处罚 decision with the 双公示 fields of the national template."""

    subject: Subject
    """行政相对人 (名称, 类别, 代码_1…_6, 法定代表人, 证件)."""
    decision_number: str
    """行政处罚决定书文号."""
    violation_type: str
    """违法行为类型."""
    violation_facts: str
    """违法事实."""
    legal_basis: str
    """处罚依据."""
    categories: tuple[PenaltyCategory, ...]
    """处罚类别, one or more, in the order given."""
    content: str
    """处罚内容."""
    fine_wan: Decimal | None
    """罚款金额（万元）."""
    confiscated_wan: Decimal | None
    """没收违法所得、没收非法财物的金额（万元）."""
    license_affected: str | None
    """暂扣或吊销证照名称及编号."""
    decision_date: datetime.date
    """处罚决定日期."""
    penalty_valid_until: datetime.date | None
    """处罚有效期 (the date the penalty's effect ends)."""
    publication_deadline: datetime.date | None
    """公示截止期, as the department states it (the rule set decides the window)."""
    authority: str
    """处罚机关."""
    authority_uscc: str
    """处罚机关统一社会信用代码."""
    data_source: str
    """数据来源单位."""
    data_source_uscc: str
    """数据来源单位统一社会信用代码."""
    note: str | None
    """备注."""

    @property
    def natural_key(self) -> NaturalKey:
        """Authority USCC and decision number."""
        return NaturalKey(self.authority_uscc, self.decision_number)


@dataclass(frozen=True)
class LicensingRecord:
    """A 行政许可 decision with the 双公示 fields of the national template."""

    subject: Subject
    """行政相对人."""
    document_name: str
    """行政许可决定文书名称."""
    decision_number: str
    """行政许可决定文书号."""
    category: LicenseCategory
    """许可类别."""
    certificate_name: str | None
    """许可证书名称."""
    license_number: str | None
    """许可编号."""
    content: str
    """许可内容."""
    decision_date: datetime.date
    """许可决定日期."""
    valid_from: datetime.date
    """有效期自."""
    valid_to: datetime.date
    """有效期至 (2099-12-31: long-term)."""
    authority: str
    """许可机关."""
    authority_uscc: str
    """许可机关统一社会信用代码."""
    status: LicenseStatus
    """当前状态."""
    data_source: str
    """数据来源单位."""
    data_source_uscc: str
    """数据来源单位统一社会信用代码."""
    note: str | None
    """备注."""

    @property
    def natural_key(self) -> NaturalKey:
        """Authority USCC and decision number."""
        return NaturalKey(self.authority_uscc, self.decision_number)

    @property
    def long_term(self) -> bool:
        """Whether the license is long-term (有效期至 2099-12-31)."""
        return self.valid_to == datetime.date(2099, 12, 31)


@dataclass(frozen=True)
class ListEntry:
    """A subject's entry into a list (认定), with the decision that made it."""

    subject: Subject
    """Who enters the list."""
    list_type: ListType
    """Black or red list."""
    list_name: str
    """The list's name as the authority publishes it (e.g. 严重违法失信名单)."""
    decision_number: str
    """认定文书号."""
    reason: str
    """列入事由."""
    legal_basis: str
    """列入依据."""
    entry_date: datetime.date
    """列入日期."""
    planned_exit_date: datetime.date | None
    """The date the entry ends by itself (移出日期), if the rule fixes one."""
    authority: str
    """认定单位."""
    authority_uscc: str
    """认定单位统一社会信用代码."""
    basis_records: tuple[NaturalKey, ...] = ()
    """The records (penalties, broken commitments…) the entry rests on."""

    @property
    def natural_key(self) -> NaturalKey:
        """Authority USCC and decision number."""
        return NaturalKey(self.authority_uscc, self.decision_number)


@dataclass(frozen=True)
class ListExit:
    """A subject's exit from a list before or at its planned end."""

    entry: NaturalKey
    """The entry that ends."""
    exit_date: datetime.date
    """移出日期."""
    reason: str
    """移出事由 (期满, 信用修复, 撤销认定…)."""


@dataclass(frozen=True)
class CreditCommitment:
    """A 信用承诺: what a subject undertook in writing, tracked until fulfilled or broken."""

    subject: Subject
    """Who committed."""
    commitment_number: str
    """承诺书编号."""
    matter: str
    """承诺事项 (e.g. the approval it was given for, 告知承诺制)."""
    content: str
    """承诺内容."""
    signed_on: datetime.date
    """签署日期."""
    due_on: datetime.date | None
    """The date by which the commitment must be fulfilled, if any."""
    status: CommitmentStatus
    """Pending, fulfilled or broken."""
    authority: str
    """受理单位."""
    authority_uscc: str
    """受理单位统一社会信用代码."""

    @property
    def natural_key(self) -> NaturalKey:
        """Accepting authority's USCC and commitment number."""
        return NaturalKey(self.authority_uscc, self.commitment_number)


CreditRecord = PenaltyRecord | LicensingRecord | ListEntry | CreditCommitment
"""A record with a natural key."""


@dataclass(frozen=True)
class LifecycleEvent:
    """One anchored step of a record's life."""

    kind: LifecycleEventKind
    """What happened."""
    record_id: Hash32
    """The record it concerns (:func:`record_id`)."""
    at: datetime.datetime
    """When it took effect (timezone-aware)."""
    changed_fields: tuple[str, ...]
    """For a correction: the fields that changed; empty otherwise."""
    reason: str
    """Why, in words (for a withdrawal, a repair, a list exit…)."""


def record_kind(record: CreditRecord) -> RecordKind:
    """The kind of ``record``."""
    if isinstance(record, PenaltyRecord):
        return RecordKind.PENALTY
    if isinstance(record, LicensingRecord):
        return RecordKind.LICENSING
    if isinstance(record, ListEntry):
        return RecordKind.LIST_ENTRY
    return RecordKind.COMMITMENT


def _strings_json(value: object) -> bytes:
    """Canonical JSON (RFC 8785) of lists and string-keyed objects of strings and nulls:
    for those, compact ``json.dumps`` without ASCII escaping and with sorted (ASCII) keys
    writes exactly the RFC 8785 form, through the C encoder."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


def record_id(kind: RecordKind, key: NaturalKey) -> Hash32:
    """The identity of a record: SM3 over the kind and the natural key, so it is the same
    on every import and for every version of the record."""
    payload = _strings_json([kind.value, key.authority_uscc, key.decision_number])
    return sm3(RECORD_ID_PREFIX + payload)


def _field_text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, NaturalKey):
        return f"{value.authority_uscc}/{value.decision_number}"
    if isinstance(value, tuple):
        return ";".join(_field_text(item) or "" for item in value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    return str(value)


def record_fields(record: CreditRecord) -> dict[str, str | None]:
    """Every field of ``record`` as text (dates ISO 8601, amounts in 万元 as decimals,
    several categories joined with ``;``), subject fields prefixed ``subject.``: the unit of
    per-field commitments and of corrections."""
    fields: dict[str, str | None] = {}
    for name, value in vars(record).items():
        if isinstance(value, Subject):
            for sub_name, sub_value in vars(value).items():
                fields[f"subject.{sub_name}"] = _field_text(sub_value)
        else:
            fields[name] = _field_text(value)
    return fields


def content_hash(record: CreditRecord) -> Hash32:
    """SM3 of the canonical JSON of the record's fields: equal for equal content."""
    payload = _strings_json([record_kind(record).value, record_fields(record)])
    return sm3(CONTENT_HASH_PREFIX + payload)
