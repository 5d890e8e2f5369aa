"""Background upkeep of the registry's database that no request waits for: request nonces
are kept only until their timestamps could no longer pass (see :mod:`registry.auth`), so a
loop deletes the expired ones now and then and the table stays as small as the traffic of
the last ``timestamp_skew`` seconds; and an SQLite database is checkpointed on a schedule,
off the requests' commits."""

from __future__ import annotations

import asyncio
import logging

from registry.auth import purge_expired_nonces
from registry.db import Database

logger = logging.getLogger(__name__)


async def run_nonce_purge(db: Database, interval: float) -> None:
    """Delete expired request nonces at once and then every ``interval`` seconds, until
    cancelled. A failed purge is logged and tried again at the next round; an unexpired
    nonce is never touched, so a replayed request is refused as before."""
    while True:
        try:
            removed = await asyncio.to_thread(purge_expired_nonces, db)
        except Exception:
            logger.exception("purging expired nonces failed; trying again later")
        else:
            logger.info("purged %d expired request nonces", removed)
        await asyncio.sleep(interval)


async def run_checkpoints(db: Database, interval: float) -> None:
    """Checkpoint an SQLite database every ``interval`` seconds until cancelled (see
    :meth:`registry.db.Database.checkpoint`); failures are logged and tried again."""
    if not db.is_sqlite:
        return
    while True:
        try:
            await asyncio.to_thread(db.checkpoint)
        except Exception:
            logger.exception("checkpointing the database failed; trying again later")
        await asyncio.sleep(interval)
