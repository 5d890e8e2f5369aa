"""The 四性 report of a fixity audit of one stored package version (stage: preservation):
what re-hashing every file against the anchored manifest can say. Authenticity rests on
the digests (a file changed, truncated, its bag-info edited or its manifest rewritten),
integrity on the files being all there and nothing added (missing, added, renamed);
usability and security are not what a fixity audit checks, so they are NOT_CHECKED, never
PASS."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from archives.audit import FindingKind, FixityFinding
from archives.four_properties import (
    CheckItem,
    FourPropertyReport,
    Stage,
    Verdict,
    evidence_lines,
)

DIGEST_KINDS = frozenset(
    {
        FindingKind.CHANGED,
        FindingKind.TRUNCATED,
        FindingKind.BAG_INFO_EDITED,
        FindingKind.MANIFEST_ALTERED,
    }
)
"""Findings that say a file's bytes are not the ones anchored (真实性)."""

PRESENCE_KINDS = frozenset(
    {FindingKind.MISSING, FindingKind.ADDED, FindingKind.RENAMED, FindingKind.TRUNCATED}
)
"""Findings that say the package is not whole as anchored (完整性)."""

NOT_AUDITED = "a fixity audit re-hashes the stored files; it does not check this"
"""The evidence of the items a fixity audit leaves unchecked."""


def _line(finding: FixityFinding) -> str:
    found = finding.actual_sm3 or "-"
    line = f"{finding.path}: {finding.kind.value}, anchored {finding.expected_sm3 or '-'}"
    line += f", found {found}"
    return f"{line} ({finding.detail})" if finding.detail else line


def _item(code: str, name: str, failures: list[str], passed: str) -> CheckItem:
    if failures:
        return CheckItem(code, name, Verdict.FAIL, evidence_lines(failures))
    return CheckItem(code, name, Verdict.PASS, (passed,))


def fixity_report(
    package: str, findings: Sequence[FixityFinding], files: int, *, checked_at: datetime
) -> FourPropertyReport:
    """The report of one version's audit: ``findings`` are that version's (any order),
    ``files`` the number of files its anchored manifest lists, ``package`` its 档号."""
    ordered = sorted(findings, key=lambda finding: (finding.path, finding.kind.value))
    digests = [_line(f) for f in ordered if f.kind in DIGEST_KINDS]
    presence = [_line(f) for f in ordered if f.kind in PRESENCE_KINDS]
    items = (
        _item(
            "authenticity.digests",
            "文件摘要值校验",
            digests,
            f"{files} files hash to the SM3 anchored at ingest",
        ),
        _item(
            "integrity.counts",
            "文件数量与字节数",
            presence,
            f"{files} files present as anchored, none added",
        ),
        CheckItem("usability.opens", "文件可读可用", Verdict.NOT_CHECKED, (NOT_AUDITED,)),
        CheckItem("security.virus", "病毒检测", Verdict.NOT_CHECKED, (NOT_AUDITED,)),
    )
    return FourPropertyReport(
        package=package, stage=Stage.PRESERVATION, checked_at=checked_at, items=items
    )


__all__ = ["DIGEST_KINDS", "PRESENCE_KINDS", "fixity_report"]
