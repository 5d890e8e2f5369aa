"""The repair applications a subject filed itself (:func:`registry.credit.repair.file_own_repair`)
as its tracker shows them: each with the state the authority's decision left it in — pending
(with its deadline, and whether it is overdue), approved or rejected, with the reason and
when — found through the subject's blind index, newest first, in pages."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, or_, select

from registry.authorizations.paging import (
    DEFAULT_LIMIT,
    Page,
    check_limit,
    decode_cursor,
    encode_cursor,
)
from registry.authorizations.service import Sharing
from registry.credit.models import CreditRepairApplication
from registry.credit.repair import CreditRepairFiling

SUBJECT_REPAIRS = "subject-repairs"
"""The listing of one subject's own repair applications (its cursors name it)."""


def _seconds(moment: datetime | None) -> int | None:
    if moment is None:
        return None
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())


def repair_json(
    filing: CreditRepairFiling, application: CreditRepairApplication, now: int
) -> dict[str, Any]:
    """One application as the tracker shows it."""
    deadline = _seconds(application.deadline)
    return {
        "applicationId": filing.application_id,
        "recordId": application.record_id,
        "state": application.state,
        "filedAt": filing.at,
        "filedBy": filing.filed_by,
        "termsHash": filing.terms_hash,
        "evidenceHash": application.evidence_hash,
        "deadline": deadline,
        "overdue": application.state == "pending" and deadline is not None and now >= deadline,
        "decidedAt": _seconds(application.decided_at),
        "decisionReason": application.decision_reason,
    }


def subject_repairs(
    sharing: Sharing, subject_index: str, *, limit: int = DEFAULT_LIMIT, after: str | None = None
) -> Page[dict[str, Any]]:
    """One page of the repair applications the subject filed, newest first."""
    check_limit(limit)
    key = decode_cursor(SUBJECT_REPAIRS, after, (int, str))
    query = (
        select(CreditRepairFiling, CreditRepairApplication)
        .join(
            CreditRepairApplication,
            CreditRepairApplication.id == CreditRepairFiling.application_id,
        )
        .where(CreditRepairFiling.subject_index == subject_index)
    )
    if key is not None:
        at, application_id = int(key[0]), str(key[1])
        query = query.where(
            or_(
                CreditRepairFiling.at < at,
                and_(
                    CreditRepairFiling.at == at,
                    CreditRepairFiling.application_id < application_id,
                ),
            )
        )
    newest = query.order_by(CreditRepairFiling.at.desc(), CreditRepairFiling.application_id.desc())
    now = sharing.now()
    with sharing.db.read_session() as session:
        rows = session.execute(newest.limit(limit + 1)).all()
        shown = [repair_json(filing, application, now) for filing, application in rows[:limit]]
    last = shown[-1] if shown else None
    more = len(rows) > limit and last is not None
    return Page(
        shown,
        encode_cursor(SUBJECT_REPAIRS, (last["filedAt"], last["applicationId"]))
        if more and last is not None
        else None,
    )


__all__ = ["SUBJECT_REPAIRS", "repair_json", "subject_repairs"]
