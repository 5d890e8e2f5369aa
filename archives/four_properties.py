"""四性检测 (DA/T 70-2018): authenticity (真实性), integrity (完整性), usability (可用性) and
security (安全性) of one package, at ingest, during preservation and at transfer. Every
item is PASS, FAIL or NOT_CHECKED with its evidence; an item that could not be checked (no
signature present, no item list, no virus scanner, files left unread when the package's
reading budget was spent) is NOT_CHECKED, never PASS."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from archives.bag_reader import BagReading
from archives.description import (
    REQUIRED_FIELDS,
    ArchivalDescription,
    parse_description,
    parse_period,
)
from archives.errors import ArchiveError
from archives.formats import ALLOWED_FORMATS, FormatIdentity, identify
from archives.items import ITEMS_FILE, Item, numbering_gaps, read_items
from archives.usability import BudgetSpent, NotUsable, open_file
from archives.virus_scan import Scanner, ScanUnavailable
from chain.crypto import PublicKey
from chain.errors import ChainError
from sdk.canonical import canonical_json

SIGNATURE_SUFFIX = ".sm2sig"
"""A detached signature beside a payload file: base64 of the DER SM2 signature (default
signer ID) over the file's bytes, by the key in bag-info's 签名公钥 (hex, 65 bytes)."""

SIGNER_KEY_FIELD = "签名公钥"
"""bag-info field naming the key detached signatures are checked against."""

MAX_EVIDENCE = 50
"""Most evidence lines kept per item (the count of the rest is said)."""

MAX_SIGNED_FILE = 256 * 1024 * 1024
"""Largest file whose detached signature is checked (SM2 signs the whole message)."""


class Verdict(StrEnum):
    """The outcome of one check item."""

    PASS = "PASS"
    FAIL = "FAIL"
    NOT_CHECKED = "NOT_CHECKED"


class Stage(StrEnum):
    """When the check runs."""

    INGEST = "ingest"
    PRESERVATION = "preservation"
    TRANSFER = "transfer"


PROPERTIES = {
    "authenticity": "真实性",
    "integrity": "完整性",
    "usability": "可用性",
    "security": "安全性",
}
"""The four properties and their Chinese names."""


@dataclass(frozen=True)
class CheckItem:
    """One item of the report."""

    code: str
    """Stable id, ``<property>.<item>``."""
    name: str
    """Its Chinese name."""
    verdict: Verdict
    """PASS, FAIL or NOT_CHECKED."""
    evidence: tuple[str, ...]
    """What the verdict rests on."""

    @property
    def property(self) -> str:
        """The property it belongs to (``authenticity`` ...)."""
        return self.code.split(".", 1)[0]

    def to_json(self) -> dict[str, object]:
        """As reported."""
        return {
            "code": self.code,
            "property": PROPERTIES[self.property],
            "name": self.name,
            "verdict": self.verdict.value,
            "evidence": list(self.evidence),
        }


@dataclass(frozen=True)
class FourPropertyReport:
    """The report of one check run."""

    package: str
    """The package (its 档号, or the bag's directory name before it has one)."""
    stage: Stage
    """When it ran."""
    checked_at: datetime
    """When (UTC)."""
    items: tuple[CheckItem, ...]
    """Every item, in report order."""

    @property
    def failed(self) -> tuple[CheckItem, ...]:
        """The FAIL items."""
        return tuple(item for item in self.items if item.verdict is Verdict.FAIL)

    @property
    def verdict(self) -> Verdict:
        """FAIL if any item failed, NOT_CHECKED if any was not checked, else PASS."""
        verdicts = {item.verdict for item in self.items}
        if Verdict.FAIL in verdicts:
            return Verdict.FAIL
        return Verdict.NOT_CHECKED if Verdict.NOT_CHECKED in verdicts else Verdict.PASS

    def item(self, code: str) -> CheckItem:
        """The item ``code``; raises KeyError."""
        for item in self.items:
            if item.code == code:
                return item
        raise KeyError(code)

    def to_json(self) -> dict[str, object]:
        """The JSON report (DA/T 70 items, Chinese names)."""
        return {
            "standard": "DA/T 70-2018",
            "package": self.package,
            "stage": self.stage.value,
            "checkedAt": self.checked_at.astimezone(UTC).isoformat(),
            "verdict": self.verdict.value,
            "items": [item.to_json() for item in self.items],
        }

    def canonical_json(self) -> bytes:
        """RFC 8785 bytes of :meth:`to_json`: what the report hash is taken over."""
        return canonical_json(self.to_json())

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> FourPropertyReport:
        """A report read back from :meth:`to_json`; raises ValueError if it is not one."""
        try:
            return cls(
                package=str(value["package"]),
                stage=Stage(value["stage"]),
                checked_at=datetime.fromisoformat(str(value["checkedAt"])),
                items=tuple(
                    CheckItem(
                        code=str(item["code"]),
                        name=str(item["name"]),
                        verdict=Verdict(item["verdict"]),
                        evidence=tuple(str(line) for line in item["evidence"]),
                    )
                    for item in value["items"]
                ),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a four-property report: {exc}") from exc


def evidence_lines(lines: list[str]) -> tuple[str, ...]:
    """An item's evidence: ``lines``, the first :data:`MAX_EVIDENCE` of them and the count
    of the rest when there are more."""
    if len(lines) <= MAX_EVIDENCE:
        return tuple(lines)
    return (*lines[:MAX_EVIDENCE], f"... and {len(lines) - MAX_EVIDENCE} more")


def _item(code: str, name: str, failures: list[str], passes: list[str]) -> CheckItem:
    if failures:
        return CheckItem(code, name, Verdict.FAIL, evidence_lines(failures))
    return CheckItem(code, name, Verdict.PASS, evidence_lines(passes))


def _not_checked(code: str, name: str, why: str) -> CheckItem:
    return CheckItem(code, name, Verdict.NOT_CHECKED, (why,))


@dataclass(frozen=True)
class _Context:
    reading: BagReading
    description: ArchivalDescription | None
    description_error: str | None
    items: tuple[Item, ...] | None
    items_error: str | None
    formats: dict[str, FormatIdentity]
    now: datetime

    def payload_path(self, path: str) -> Path:
        return self.reading.root / path


# -- 真实性 ------------------------------------------------------------------------------------


def _digests(ctx: _Context) -> CheckItem:
    reading = ctx.reading
    failures = [
        f"{m.path}: {m.algorithm} expected {m.expected}, found {m.found}"
        for m in reading.mismatches
    ]
    listed = len(reading.files)
    return _item(
        "authenticity.digests",
        "文件摘要值校验",
        failures,
        [f"{listed} manifest entries match ({', '.join(reading.algorithms)})"],
    )


def _signatures(ctx: _Context) -> CheckItem:
    name = "电子签名有效性"
    signed = [f for f in ctx.reading.payload if f.path.endswith(SIGNATURE_SUFFIX)]
    if not signed:
        return _not_checked("authenticity.signatures", name, "no embedded signature present")
    key_text = ctx.reading.info.get(SIGNER_KEY_FIELD)
    failures: list[str] = []
    passes: list[str] = []
    try:
        key = PublicKey.from_bytes(bytes.fromhex(str(key_text)))
    except (ValueError, ChainError):
        return CheckItem(
            "authenticity.signatures",
            name,
            Verdict.FAIL,
            (f"signatures present but bag-info {SIGNER_KEY_FIELD} is missing or not a key",),
        )
    for signature_file in signed:
        target = signature_file.path.removesuffix(SIGNATURE_SUFFIX)
        document = ctx.payload_path(target)
        if not document.is_file():
            failures.append(f"{signature_file.path}: signs {target}, which is absent")
            continue
        if document.stat().st_size > MAX_SIGNED_FILE:
            failures.append(f"{target}: over {MAX_SIGNED_FILE} bytes, signature not checked")
            continue
        try:
            signature = base64.b64decode(
                ctx.payload_path(signature_file.path).read_bytes().strip(), validate=True
            )
            key.verify(signature, document.read_bytes())
        except (binascii.Error, ValueError, ChainError):
            failures.append(f"{target}: the SM2 signature in {signature_file.path} does not verify")
            continue
        passes.append(f"{target}: SM2 signature verifies")
    # Each signature's outcome is evidence, those that verify as much as those that fail.
    return _item("authenticity.signatures", name, failures and failures + passes, passes)


def _metadata_ranges(ctx: _Context) -> CheckItem:
    failures: list[str] = []
    if ctx.description_error is not None:
        failures.append(ctx.description_error)
    description = ctx.description
    if description is not None and description.formed.first > ctx.now.date():
        failures.append(f"形成时间 {description.formed.text} is in the future")
    passes = ["description fields within range"] if description else []
    return _item("authenticity.metadata_ranges", "元数据值域", failures, passes)


def _metadata_content(ctx: _Context) -> CheckItem:
    name = "元数据与内容一致"
    description = ctx.description
    if description is None:
        return _not_checked(
            "authenticity.metadata_content", name, "no valid description to compare"
        )
    failures: list[str] = []
    passes: list[str] = []
    if ctx.items is not None:
        counted, what = len(ctx.items), f"{len(ctx.items)} items in {ITEMS_FILE}"
    else:
        documents = [f for f in ctx.reading.payload if not f.path.endswith(SIGNATURE_SUFFIX)]
        counted, what = len(documents), f"{len(documents)} payload documents"
    if counted != description.item_count:
        failures.append(f"件数 {description.item_count} but {what}")
    else:
        passes.append(f"件数 {description.item_count} = {what}")
    for item in ctx.items or ():
        try:
            period = parse_period(item.formed)
        except ArchiveError as exc:
            failures.append(f"{item.archival_code}: {exc}")
            continue
        if not description.formed.contains(period):
            failures.append(
                f"{item.archival_code}: 形成时间 {item.formed} outside the package's "
                f"{description.formed.text}"
            )
    if ctx.items:
        passes.append(f"item dates within {description.formed.text}")
    return _item("authenticity.metadata_content", name, failures, passes)


# -- 完整性 ------------------------------------------------------------------------------------


def _counts(ctx: _Context) -> CheckItem:
    payload = ctx.reading.payload
    size = sum(f.size for f in payload)
    oxum = ctx.reading.info.get("Payload-Oxum")
    failures = list(ctx.reading.structure_problems)
    passes = [f"{len(payload)} payload files, {size} bytes"]
    if oxum is None:
        failures.append("bag-info.txt has no Payload-Oxum to check file count and bytes against")
    elif oxum == f"{size}.{len(payload)}":
        passes.append(f"Payload-Oxum {oxum} matches")
    elif not failures:
        failures.append(f"Payload-Oxum {oxum} but {size}.{len(payload)} found")
    return _item("integrity.counts", "文件数量与字节数", failures, passes)


def _required_fields(ctx: _Context) -> CheckItem:
    info = ctx.reading.info
    missing = [name for name in REQUIRED_FIELDS if not str(info.get(name, "")).strip()]
    return _item(
        "integrity.required_fields",
        "必填著录项",
        [f"{name} is missing" for name in missing],
        [f"all {len(REQUIRED_FIELDS)} required fields present"],
    )


def _numbering(ctx: _Context) -> CheckItem:
    name = "档号连续性"
    if ctx.items_error is not None:
        return CheckItem("integrity.numbering", name, Verdict.FAIL, (ctx.items_error,))
    if ctx.items is None:
        return _not_checked("integrity.numbering", name, f"no {ITEMS_FILE}: no item numbering")
    return _item(
        "integrity.numbering",
        name,
        numbering_gaps(ctx.items),
        [f"{len(ctx.items)} items numbered without gaps"],
    )


def _attachments(ctx: _Context) -> CheckItem:
    name = "附件齐全"
    if ctx.items is None:
        return _not_checked("integrity.attachments", name, f"no {ITEMS_FILE}: no references")
    present = {f.path for f in ctx.reading.payload}
    failures = [
        f"{item.archival_code}: {path} is referenced but absent"
        for item in ctx.items
        for path in (item.file, *item.attachments)
        if path not in present
    ]
    references = sum(1 + len(item.attachments) for item in ctx.items)
    return _item("integrity.attachments", name, failures, [f"{references} references present"])


# -- 可用性 ------------------------------------------------------------------------------------


def _format_list(ctx: _Context) -> CheckItem:
    failures = [
        f"{path}: {identity.format} ({identity.evidence}) is not an allowed format"
        for path, identity in ctx.formats.items()
        if not identity.allowed
    ]
    kinds = sorted({identity.format for identity in ctx.formats.values()})
    return _item(
        "usability.formats",
        "格式识别与准入",
        failures,
        [
            f"identified by content: {', '.join(kinds) or 'no files'}; allowed: "
            f"{', '.join(ALLOWED_FORMATS)}"
        ],
    )


def _opens(ctx: _Context) -> CheckItem:
    """FAIL if a file does not open; else NOT_CHECKED if one was not read (the package's
    reading budget was spent), as the report's verdict is; else PASS."""
    code, name = "usability.opens", "文件可读可用"
    failures: list[str] = []
    unread: list[str] = []
    passes: list[str] = []
    opened = {f.path: f.opened for f in ctx.reading.payload if f.opened is not None}
    for path, identity in ctx.formats.items():
        if not identity.allowed:
            failures.append(f"{path}: not opened ({identity.format} is not allowed)")
            continue
        known = opened.get(path)
        if known is not None:
            found, text = known
            {True: passes, False: failures, None: unread}[found].append(f"{path}: {text}")
            continue
        try:
            text = open_file(ctx.payload_path(path), identity, budget=ctx.reading.budget)
            passes.append(f"{path}: {text}")
        except NotUsable as exc:
            failures.append(f"{path}: {exc}")
        except BudgetSpent as exc:
            unread.append(f"{path}: {exc}")
        except OSError as exc:
            failures.append(f"{path}: unreadable: {exc}")
    if unread and not failures:
        return CheckItem(code, name, Verdict.NOT_CHECKED, evidence_lines(unread + passes))
    return _item(code, name, failures + unread, passes)


# -- 安全性 ------------------------------------------------------------------------------------


def _virus(ctx: _Context, scanner: Scanner | None) -> CheckItem:
    name = "病毒检测"
    if scanner is None:
        return _not_checked("security.virus", name, "no virus scanner configured")
    failures: list[str] = []
    try:
        for f in ctx.reading.payload:
            result = scanner.scan(ctx.payload_path(f.path))
            if not result.clean:
                failures.append(f"{f.path}: {result.detail}")
    except ScanUnavailable as exc:
        return _not_checked("security.virus", name, f"scanner unavailable: {exc}")
    return _item(
        "security.virus",
        name,
        failures,
        [f"{len(ctx.reading.payload)} files clean ({scanner.name})"],
    )


def _classification(ctx: _Context) -> CheckItem:
    level = ctx.reading.info.get("密级")
    description = ctx.description
    if description is not None:
        return CheckItem(
            "security.classification",
            "密级准入",
            Verdict.PASS,
            (f"密级 {description.classification}",),
        )
    return CheckItem(
        "security.classification",
        "密级准入",
        Verdict.FAIL,
        (f"密级 {level!r} not accepted" if level else "密级 is missing",),
    )


_PATTERN_SUFFIX = re.compile(re.escape(SIGNATURE_SUFFIX) + "$")


def check_package(
    reading: BagReading,
    *,
    stage: Stage,
    now: datetime,
    scanner: Scanner | None = None,
    package: str | None = None,
) -> FourPropertyReport:
    """Run every 四性 item over a bag as read by :func:`archives.bag_reader.read_bag` at
    ``now``. Never raises for what it finds: every finding is in the report."""
    description: ArchivalDescription | None = None
    description_error: str | None = None
    try:
        description = parse_description(reading.info)
    except ArchiveError as exc:
        description_error = str(exc)
    items: tuple[Item, ...] | None = None
    items_error: str | None = None
    try:
        items = read_items(reading.root)
    except ArchiveError as exc:
        items_error = str(exc)
    formats = {
        f.path: f.identity or identify(reading.root / f.path)
        for f in reading.payload
        if not _PATTERN_SUFFIX.search(f.path)
    }
    ctx = _Context(reading, description, description_error, items, items_error, formats, now)
    checks: list[Callable[[_Context], CheckItem]] = [
        _digests,
        _signatures,
        _metadata_ranges,
        _metadata_content,
        _counts,
        _required_fields,
        _numbering,
        _attachments,
        _format_list,
        _opens,
    ]
    results = [check(ctx) for check in checks]
    results.extend((_virus(ctx, scanner), _classification(ctx)))
    name = package or (description.archival_code if description else reading.root.name)
    return FourPropertyReport(package=name, stage=stage, checked_at=now, items=tuple(results))


def today(now: datetime) -> date:
    """The UTC date of ``now``."""
    return now.astimezone(UTC).date()


__all__ = [
    "PROPERTIES",
    "SIGNATURE_SUFFIX",
    "SIGNER_KEY_FIELD",
    "CheckItem",
    "FourPropertyReport",
    "Stage",
    "Verdict",
    "check_package",
    "evidence_lines",
]
