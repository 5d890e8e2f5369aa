"""Expiry as an event: a worker finds the granted, unrevoked authorizations whose window
has ended or whose every use was made, and records one ``expire`` event for each, signed
by the registry and anchored like a grant, amendment or revocation.

Exactly once, even with several registry processes on one database: each expiry is
claimed by one conditional update (``expired_at`` set where it is still NULL) in the
transaction that stores the event, so of two processes racing for it one claims it and
the other updates nothing and records nothing. The worker also runs under a lease of its
own (:mod:`registry.lease`), so normally one process looks for expiries at all; the claim
keeps it exact across a hand-over. Time comes from the shared clock
(``Sharing.clock``)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from sqlalchemy import ColumnElement, Engine, and_, or_, select, update

from authorizations.access_log import EventKind
from registry.authorizations.models import AuthorizationRow
from registry.authorizations.service import Sharing, add_event
from registry.lease import AdvisoryLease, FileLease, WorkersLease, advisory_key

logger = logging.getLogger(__name__)

EXPIRY_ACTOR = "registry"
"""Who an expiry event names as having acted."""

EXPIRY_INTERVAL_S = 15.0
"""How often the worker looks for expiries due."""

EXPIRY_BATCH = 200
"""Most expiries recorded in one round (the next round takes the rest at once)."""

LEASE_RETRY_S = 5.0
"""How often a process without the expiry lease tries to take it."""

EXPIRY_LEASE_NAME = "lianxin-authorization-expiry"
"""The name of the expiry worker's lease (its advisory lock key is derived from it)."""


def _due(now: int) -> ColumnElement[bool]:
    """Open authorizations (granted, unrevoked, expiry unrecorded) due at ``now``."""
    return and_(
        AuthorizationRow.granted_at.is_not(None),
        AuthorizationRow.revoked_at.is_(None),
        AuthorizationRow.expired_at.is_(None),
        or_(
            AuthorizationRow.valid_until <= now,
            and_(
                AuthorizationRow.max_uses.is_not(None),
                AuthorizationRow.uses_made >= AuthorizationRow.max_uses,
            ),
        ),
    )


def due_expiries(sharing: Sharing, *, limit: int = EXPIRY_BATCH) -> list[str]:
    """Ids of at most ``limit`` authorizations whose expiry is due now and unrecorded,
    the earliest window's end first."""
    now = sharing.now()
    with sharing.db.read_session() as session:
        return list(
            session.scalars(
                select(AuthorizationRow.id)
                .where(_due(now))
                .order_by(AuthorizationRow.valid_until, AuthorizationRow.id)
                .limit(limit)
            )
        )


def record_expiry(sharing: Sharing, authorization_id: str) -> bool:
    """Claim the expiry of ``authorization_id`` and record its anchored ``expire`` event,
    in one transaction; False (nothing changed) if it is not due now or another process
    claimed it first."""
    now = sharing.now()
    sharing.signer.ensure_log_client()
    with sharing.db.session() as session:
        claimed = session.execute(
            update(AuthorizationRow)
            .where(AuthorizationRow.id == authorization_id, _due(now))
            .values(expired_at=now)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return False
        row = session.get_one(AuthorizationRow, authorization_id)
        add_event(sharing, session, row, EventKind.EXPIRE, EXPIRY_ACTOR, now)
    return True


def expire_due(sharing: Sharing, *, limit: int = EXPIRY_BATCH) -> int:
    """Record the expiry of (at most ``limit``) authorizations due now; returns how many
    this call recorded."""
    return sum(record_expiry(sharing, found) for found in due_expiries(sharing, limit=limit))


def expiry_lease(engine: Engine) -> WorkersLease:
    """The expiry worker's lease on ``engine``'s database: a lock file next to an SQLite
    database, an advisory lock of its own on PostgreSQL (apart from the workers lease, so
    it does not wait for the batcher's holder)."""
    url = engine.url
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            raise ValueError("an in-memory SQLite database is private to one process")
        return FileLease(Path(url.database + ".authorization-expiry.lock"))
    if url.get_backend_name() == "postgresql":
        return AdvisoryLease(engine, advisory_key(EXPIRY_LEASE_NAME))
    raise ValueError(f"no expiry lease for {url.get_backend_name()} databases")


async def run_expiry(sharing: Sharing, interval: float = EXPIRY_INTERVAL_S) -> None:
    """Record the expiries due now and then every ``interval`` seconds (at once again
    while a round was full), until cancelled; a failed round is logged and tried again."""
    while True:
        recorded = 0
        try:
            recorded = await asyncio.to_thread(expire_due, sharing)
        except Exception:
            logger.exception("recording authorization expiries failed; trying again later")
        else:
            if recorded:
                logger.info("recorded %d authorization expiries", recorded)
        if recorded < EXPIRY_BATCH:
            await asyncio.sleep(interval)


async def run_expiry_when_leased(
    sharing: Sharing, lease: WorkersLease, interval: float = EXPIRY_INTERVAL_S
) -> None:
    """Wait for the expiry lease, then :func:`run_expiry` until cancelled; the lease is
    given back at the end."""
    while True:
        try:
            if await asyncio.to_thread(lease.try_acquire):
                break
        except Exception:
            logger.exception("taking the expiry lease failed; trying again")
        await asyncio.sleep(LEASE_RETRY_S)
    try:
        await run_expiry(sharing, interval)
    finally:
        await asyncio.to_thread(lease.release)


__all__ = [
    "EXPIRY_ACTOR",
    "EXPIRY_INTERVAL_S",
    "EXPIRY_LEASE_NAME",
    "due_expiries",
    "expire_due",
    "expiry_lease",
    "record_expiry",
    "run_expiry",
    "run_expiry_when_leased",
]
