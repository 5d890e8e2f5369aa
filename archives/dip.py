"""Export of an access copy (DIP) of a stored package version: a zip with ``dip.json`` and
``files/<path>`` for every file, in the format :func:`sdk.archive_bundle.verify_dip` checks
offline. The proofs (each file's anchored record, the root's, the custody events') are
handed in by whoever holds them (the registry); this module only assembles."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from archives.errors import ArchiveError
from archives.package import manifest_text
from archives.store import ArchiveStore
from sdk.archive_bundle import DIP_FORMAT, DIP_INDEX, FILES_PREFIX


def export_dip(
    store: ArchiveStore,
    package_id: str,
    version: int,
    target: Path,
    *,
    chain_id: int,
    file_records: Mapping[str, dict[str, Any]],
    root_record: dict[str, Any],
    events: Sequence[dict[str, Any]],
) -> Path:
    """Write the DIP of ``package_id`` v``version`` to ``target`` (a new zip file).
    ``file_records`` maps each file path to ``{"metadata", "metadataSalt", "bundle"}``;
    ``root_record`` is the same for the package root; ``events`` are ``{"event": ...,
    "record": ... or None}`` in history order. Raises ArchiveError if a file has no
    record (it is not anchored yet)."""
    stored = store.read_version(package_id, version)
    missing = [entry.path for entry in stored.entries if entry.path not in file_records]
    if missing:
        raise ArchiveError(f"not anchored yet: {', '.join(missing[:5])}")
    index = {
        "format": DIP_FORMAT,
        "chainId": chain_id,
        "packageId": package_id,
        "version": version,
        "root": stored.root,
        "description": stored.description,
        "lineage": None if stored.lineage is None else stored.lineage.to_json(),
        "reportSm3": stored.report_sm3,
        "entries": [entry.to_json() for entry in stored.entries],
        "records": {entry.path: file_records[entry.path] for entry in stored.entries},
        "rootRecord": root_record,
        "events": list(events),
    }
    bag = store.bag_path(package_id, version)
    with zipfile.ZipFile(target, "x", compression=zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr(DIP_INDEX, json.dumps(index, ensure_ascii=False, separators=(",", ":")))
        bundle.writestr("manifest-sm3.txt", manifest_text(stored.entries))
        for entry in stored.entries:
            bundle.write(bag / entry.path, FILES_PREFIX + entry.path)
    return target


__all__ = ["export_dip"]
