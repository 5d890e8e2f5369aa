"""A second registry process racing for expiries: ``python expiry_racer.py END ID...``
with the registry's settings in the environment. It opens the database and the chain as a
registry process does, prints ``ready``, waits for a line on stdin, then tries to record
the expiry of each ID on a clock fixed at END and prints, as JSON, which it recorded."""

from __future__ import annotations

import json
import sys

from registry.authorizations.expiry import record_expiry
from registry.authorizations.service import Sharing
from registry.chain_gateway import ChainGateway
from registry.db import Database
from registry.notarization import VerifyCaches
from registry.settings import RegistrySettings


def main(end: int, ids: list[str]) -> None:
    settings = RegistrySettings()
    db = Database.open(settings, run_migrations=False)
    gateway = ChainGateway(settings, db)
    try:
        sharing = Sharing(db, gateway, VerifyCaches(), clock=lambda: float(end))
        sharing.signer.ensure_log_client()
        print("ready", flush=True)
        sys.stdin.readline()
        print(json.dumps([record_expiry(sharing, found) for found in ids]), flush=True)
    finally:
        gateway.close()
        db.close()


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2:])
