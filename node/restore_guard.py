"""The start-up check that keeps a validator restored from a backup from signing again
until its operator confirms (why: :mod:`node.backup`)."""

from __future__ import annotations

import json
import logging

from chain.errors import ChainError
from node.config import NodeConfig

log = logging.getLogger(__name__)

RESTORED_MARKER = "restored-from-backup.json"
"""Left in a restored node's data directory until a validator's first confirmed start; it
holds the backup's manifest."""


class RestoredWalRefused(ChainError):
    """A restored validator started without the operator's confirmation."""


def _describe(text: str) -> str:
    try:
        manifest = json.loads(text)
        wal_height = manifest["wal_last_height"]
        where = (
            f"its consensus WAL ends at height {wal_height} round {manifest['wal_last_round']}"
            if wal_height is not None
            else "its consensus WAL was empty"
        )
        return f"a backup taken at height {manifest['head_height']} ({where})"
    except (ValueError, KeyError, TypeError):
        return "a backup"


def check_restored(config: NodeConfig, *, confirmed: bool) -> None:
    """Before a node starts: refuse a restored validator whose operator has not confirmed
    (RestoredWalRefused, stating the double-sign risk); with the confirmation, or for a node
    that signs nothing, clear the mark and go on."""
    marker = config.data_dir / RESTORED_MARKER
    if not marker.exists():
        return
    if config.validator_keystore is None:
        marker.unlink()
        return
    try:
        taken = _describe(marker.read_text(encoding="utf-8"))
    except OSError:
        taken = "a backup"
    if not confirmed:
        raise RestoredWalRefused(
            f"this validator was restored from {taken}. Before its data was lost it may have "
            "signed votes after that point which the restored WAL does not hold; started now "
            "it could sign a second, different vote in a slot it already voted in (a double "
            "sign, Byzantine behaviour the other validators see). Start it only once the node "
            "it replaces can never run again: `lianxin node start --confirm-restored-wal`"
        )
    log.warning("starting a validator restored from %s: the operator confirmed it", taken)
    marker.unlink()
