"""Adopting a parameter schedule (:mod:`chain.upgrades`) on a node that already holds blocks.

A schedule entry changes how blocks from its height on are judged. A node that has committed
blocks at or above that height judged them without it, so it cannot take the entry on
afterwards: it would hold blocks its own rules now call invalid, and it cannot know whether the
rest of the network agrees. Nor can an entry the node applied be withdrawn or changed once
the node has passed its height. So, at start, with the ledger's head at ``head``:

- an entry at or below ``head`` must be one the node adopted before (it started with it while
  its head was still below the entry's height): otherwise :class:`UpgradeInPast`;
- an entry the node adopted that rules a height at or below ``head`` must still be in the
  schedule, unchanged: otherwise :class:`UpgradeWithdrawn`;
- entries above ``head`` are free: they are adopted now, and may still change until the
  node's head reaches them.

What the node adopted is recorded in ``upgrades-adopted.json`` in its data directory (written
atomically, read bounded); a node with no record has adopted nothing. The node refuses to
start on any of these errors, before it produces, votes or serves anything.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from chain.bounded_json import JsonLimitError, loads_bounded
from chain.limits import MAX_UPGRADE_RECORD_BYTES, MAX_UPGRADES
from chain.upgrades import ParameterSchedule, ScheduleError, Upgrade, check_order

ADOPTED_FILE = "upgrades-adopted.json"
"""Name of the record, in the node's data directory."""


class UpgradeInPast(ScheduleError):
    """A schedule entry at or below the node's head that the node did not adopt before."""


class UpgradeWithdrawn(ScheduleError):
    """An entry the node adopted and whose height it has passed, missing from the schedule
    now (removed or changed)."""


class UpgradeRecordError(ScheduleError):
    """The node's record of its adopted schedule cannot be read."""


def adopt_schedule(data_dir: Path, schedule: ParameterSchedule, head: int) -> None:
    """Check ``schedule`` against the node's head ``head`` and what it adopted before (see
    the module docstring), then record it as adopted. Raises UpgradeInPast,
    UpgradeWithdrawn or UpgradeRecordError, leaving the record as it was."""
    record = data_dir / ADOPTED_FILE
    adopted = read_adopted(record)
    for index, upgrade in enumerate(schedule.upgrades):
        if upgrade.height <= head and upgrade not in adopted:
            raise UpgradeInPast(
                f"upgrades[{index}]",
                f"{upgrade.describe()} is at or below this node's head {head}, and the node "
                "did not run with it before: blocks from that height were judged without it. "
                "Schedule changes must name a height above every node's head",
            )
    for upgrade in adopted:
        if upgrade.height <= head and upgrade not in schedule.upgrades:
            raise UpgradeWithdrawn(
                "upgrades",
                f"{upgrade.describe()} was applied by this node up to its head {head} and is "
                "no longer in the schedule; an entry in force cannot be removed or changed",
            )
    if adopted != schedule.upgrades:
        _write_record(record, schedule.upgrades)


def read_adopted(record: Path) -> tuple[Upgrade, ...]:
    """The entries recorded in ``record`` (none if it does not exist); raises
    UpgradeRecordError for a record that is unreadable, too large or malformed."""
    try:
        with record.open("rb") as file:
            raw = file.read(MAX_UPGRADE_RECORD_BYTES + 1)
    except FileNotFoundError:
        return ()
    except OSError as exc:
        raise UpgradeRecordError(str(record), f"cannot read: {exc}") from exc
    try:
        data = loads_bounded(raw, max_bytes=MAX_UPGRADE_RECORD_BYTES, max_depth=4)
    except JsonLimitError as exc:
        raise UpgradeRecordError(str(record), str(exc)) from exc
    entries = data.get("upgrades") if isinstance(data, dict) else None
    if not isinstance(entries, list) or len(entries) > MAX_UPGRADES:
        raise UpgradeRecordError(str(record), "not a record of adopted upgrades")
    upgrades = []
    for entry in entries:
        if not (
            isinstance(entry, dict)
            and set(entry) == {"height", "parameter", "value"}
            and _is_int(entry["height"])
            and isinstance(entry["parameter"], str)
            and _is_int(entry["value"])
        ):
            raise UpgradeRecordError(str(record), f"malformed entry {str(entry)[:80]}")
        upgrades.append(Upgrade(entry["height"], entry["parameter"], entry["value"]))
    try:
        check_order(upgrades, str(record))
    except ScheduleError as exc:
        raise UpgradeRecordError(str(record), exc.reason) from exc
    return tuple(upgrades)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _write_record(record: Path, upgrades: tuple[Upgrade, ...]) -> None:
    """Replace ``record`` atomically (write, fsync, rename, fsync the directory)."""
    body = {
        "upgrades": [
            {"height": u.height, "parameter": u.parameter, "value": u.value} for u in upgrades
        ]
    }
    temporary = record.with_name(record.name + ".tmp")
    try:
        with temporary.open("w", encoding="utf-8") as file:
            json.dump(body, file, indent=1)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, record)
        directory = os.open(record.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except OSError as exc:
        raise UpgradeRecordError(str(record), f"cannot write: {exc}") from exc
