"""Background upkeep of the registry's database that no request waits for: request nonces
are kept only until their timestamps could no longer pass (see :mod:`registry.auth`), so a
loop deletes the expired ones now and then and the table stays as small as the traffic of
the last ``timestamp_skew`` seconds."""

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
