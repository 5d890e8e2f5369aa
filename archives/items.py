"""The optional item list of a package: the tag file ``items.csv`` (UTF-8, header row
``档号,题名,形成时间,文件,附件``), one row per item (件) naming its main file and its
attachments (``;``-separated payload paths). Without it every payload file is one item.
Bounded: at most MAX_ITEMS rows, MAX_ITEMS_BYTES bytes."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

from archives.description import MAX_ITEMS
from archives.errors import DescriptionInvalid

ITEMS_FILE = "items.csv"
"""The item list's name in the bag root."""

ITEMS_HEADER = ("档号", "题名", "形成时间", "文件", "附件")
"""Its columns."""

MAX_ITEMS_BYTES = 16 * 1024 * 1024
"""Largest item list read."""

_ITEM_NUMBER = re.compile(r"^(?P<volume>.*\D)(?P<number>\d+)$")


@dataclass(frozen=True)
class Item:
    """One item (件) of the package."""

    archival_code: str
    """Its 档号: the volume's code, then the item number (件号) as the last digits."""
    title: str
    """题名."""
    formed: str
    """形成时间 as written."""
    file: str
    """Its main payload file (``data/...``)."""
    attachments: tuple[str, ...]
    """Payload paths of its attachments."""

    def volume_and_number(self) -> tuple[str, int] | None:
        """The volume code and item number the 档号 ends with, or None if it ends with no
        digits."""
        match = _ITEM_NUMBER.match(self.archival_code)
        if match is None:
            return None
        return match["volume"], int(match["number"])


def read_items(bag_root: Path) -> tuple[Item, ...] | None:
    """The item list of the bag at ``bag_root``, or None if it has none; raises
    DescriptionInvalid for an unreadable, oversized or malformed list."""
    path = bag_root / ITEMS_FILE
    if not path.is_file():
        return None
    if path.stat().st_size > MAX_ITEMS_BYTES:
        raise DescriptionInvalid(f"{ITEMS_FILE} is over {MAX_ITEMS_BYTES} bytes")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DescriptionInvalid(f"{ITEMS_FILE} is not UTF-8") from None
    rows = csv.reader(io.StringIO(text))
    header = next(rows, None)
    if header is None or tuple(cell.strip() for cell in header) != ITEMS_HEADER:
        raise DescriptionInvalid(
            f"{ITEMS_FILE} must start with the header {','.join(ITEMS_HEADER)}"
        )
    items: list[Item] = []
    for line, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(ITEMS_HEADER):
            raise DescriptionInvalid(f"{ITEMS_FILE} line {line}: {len(row)} columns, not 5")
        if len(items) >= MAX_ITEMS:
            raise DescriptionInvalid(f"{ITEMS_FILE} has more than {MAX_ITEMS} items")
        code, title, formed, file, attachments = (cell.strip() for cell in row)
        items.append(
            Item(
                archival_code=code,
                title=title,
                formed=formed,
                file=file,
                attachments=tuple(a.strip() for a in attachments.split(";") if a.strip()),
            )
        )
    return tuple(items)


def numbering_gaps(items: tuple[Item, ...]) -> list[str]:
    """What is wrong with the item numbers within each volume: duplicates, numbers missing
    between the first and the last, 档号 without an item number. Empty if none."""
    volumes: dict[str, list[int]] = {}
    findings: list[str] = []
    for item in items:
        parsed = item.volume_and_number()
        if parsed is None:
            findings.append(f"档号 {item.archival_code} ends with no item number")
            continue
        volumes.setdefault(parsed[0], []).append(parsed[1])
    for volume, numbers in sorted(volumes.items()):
        seen = sorted(numbers)
        duplicates = sorted({n for n in seen if seen.count(n) > 1})
        if duplicates:
            findings.append(f"volume {volume}: item numbers {duplicates} used twice")
        missing = sorted(set(range(seen[0], seen[-1] + 1)) - set(seen))
        if missing:
            shown = ", ".join(str(n) for n in missing[:20])
            findings.append(
                f"volume {volume}: items {shown} missing between {seen[0]} and {seen[-1]}"
            )
    return findings


__all__ = ["ITEMS_FILE", "ITEMS_HEADER", "Item", "numbering_gaps", "read_items"]
