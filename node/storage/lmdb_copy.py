"""Consistent hot copies of the node's LMDB environments.

LMDB's own copy (``mdb_env_copy2`` with compaction) reads the environment inside one read
transaction, so the copy is one committed state even while the node keeps writing: no torn
page, no half-written block. A plain file copy of ``data.mdb`` under a live writer gives no
such promise. The copy is opened read-only here, in the backing-up process; LMDB's lock file
lets it share the environment with the running node.
"""

from __future__ import annotations

from pathlib import Path

import lmdb

from chain.errors import StorageError


def copy_environment(source: Path, dest: Path) -> None:
    """Copy the LMDB environment in directory ``source`` to the new directory ``dest``
    (compacted). Raises StorageError if ``source`` holds no environment or the copy fails."""
    if not (source / "data.mdb").is_file():
        raise StorageError(f"{source} holds no LMDB store (no data.mdb)")
    dest.mkdir(parents=True, exist_ok=False)
    try:
        env = lmdb.open(str(source), readonly=True, lock=True, subdir=True, max_dbs=64)
    except lmdb.Error as exc:
        raise StorageError(f"cannot open {source} to copy it: {exc}") from exc
    try:
        env.copy(str(dest), compact=True)
    except lmdb.Error as exc:
        raise StorageError(f"cannot copy {source} to {dest}: {exc}") from exc
    finally:
        env.close()
