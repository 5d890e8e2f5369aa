"""The proofs of a check's reasons from what is kept alone, for a check answered on the
server's event loop (:mod:`registry.routers.credit_checks`): each record's latest anchored
event kept under the credit version the check read
(:func:`registry.credit.proofs.kept_latest`) and its bundle's JSON kept in the verify caches.
Where any record's proof is not kept, nothing is answered here and the caller reads them all
on a thread (:func:`registry.credit.proofs.record_bundles`), so the answer is the one that
reading gives: the same events and the very same bundle objects."""

from __future__ import annotations

from collections.abc import Sequence

from registry.credit.proofs import AnchoredEvent, anchored_event, kept_latest
from registry.db import Database
from registry.record_bundles import VerifyCaches

__all__ = ["kept_record_bundles"]


def kept_record_bundles(
    db: Database, caches: VerifyCaches, record_ids: Sequence[str], credit_version: int
) -> dict[str, AnchoredEvent | None] | None:
    """:func:`registry.credit.proofs.record_bundles` of ``record_ids`` under
    ``credit_version`` from what is kept, without touching the database or the node; None
    unless every record's proof is kept (SQLite only, where latest events are kept)."""
    if not db.is_sqlite:
        return None
    latest = kept_latest(db)
    answers: dict[str, AnchoredEvent | None] = {}
    for record_id in record_ids:
        found = latest.get((record_id, credit_version))
        if found is None:
            return None
        notary_id = found[3]
        bundle = caches.bundle_json.get(notary_id)
        if bundle is None or caches.bundles.get(notary_id) is None:
            return None
        answers[record_id] = anchored_event(found, bundle)
    return answers
