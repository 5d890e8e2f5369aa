"""The data-item and purpose catalogues: versioned TOML files bundled with the package
(``catalogues/items.v<N>.toml``, ``catalogues/purposes.v<N>.toml``), and scope matching.

An item code is dot-separated, each part lower-case letters, digits, ``_`` or ``-``.
Granting a code grants every code below it: ``license`` covers ``license.metadata`` and
``license.holder_id``, never ``licenses`` nor ``credit``."""

from __future__ import annotations

import enum
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from authorizations.errors import CatalogueError, InvalidTerms

ITEM_CODE = re.compile(r"[a-z0-9_-]{1,40}(\.[a-z0-9_-]{1,40}){0,5}")
"""An item code: one to six dot-separated parts."""

PURPOSE_CODE = re.compile(r"[a-z0-9_-]{1,40}(\.[a-z0-9_-]{1,60}){0,3}")
"""A purpose code."""

CATALOGUE_VERSION = 1
"""The catalogue version new authorizations are checked against."""


class ItemKind(enum.StrEnum):
    """What an item of the catalogue is."""

    LICENSE_TYPE = "license_type"
    CREDIT_CLASS = "credit_class"
    ARCHIVE_CLASS = "archive_class"
    FIELD = "field"


@dataclass(frozen=True)
class DataItem:
    """One entry of the data-item catalogue."""

    code: str
    """Dot-separated code (see the module docstring)."""
    kind: ItemKind
    """What it is."""
    name: str
    """Its name, as shown to a subject."""


@dataclass(frozen=True)
class Purpose:
    """One entry of the purpose catalogue."""

    code: str
    """Its code, e.g. an approval item code."""
    name: str
    """Its name, as shown to a subject."""


@dataclass(frozen=True)
class Catalogue:
    """One version of the two catalogues."""

    version: int
    """The catalogue version."""
    items: Mapping[str, DataItem]
    """Item code → item."""
    purposes: Mapping[str, Purpose]
    """Purpose code → purpose."""

    def item(self, code: str) -> DataItem:
        """The item ``code``; raises InvalidTerms if the catalogue has none."""
        found = self.items.get(code)
        if found is None:
            raise InvalidTerms(f"data item {code!r} is not in catalogue version {self.version}")
        return found

    def purpose(self, code: str) -> Purpose:
        """The purpose ``code``; raises InvalidTerms if the catalogue has none."""
        found = self.purposes.get(code)
        if found is None:
            raise InvalidTerms(f"purpose {code!r} is not in catalogue version {self.version}")
        return found


def covers(granted: str, asked: str) -> bool:
    """Whether granting item ``granted`` grants item ``asked``: the same code, or a code
    below it (``granted`` followed by a dot)."""
    return asked == granted or asked.startswith(granted + ".")


def in_scope(granted: Iterable[str], asked: str) -> bool:
    """Whether any of the ``granted`` items covers ``asked``."""
    return any(covers(code, asked) for code in granted)


def _entries(document: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    entries = document.get(key)
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise CatalogueError(f"the catalogue needs a [[{key}]] list")
    return entries


def parse_catalogue(items_toml: str, purposes_toml: str) -> Catalogue:
    """The catalogue of two TOML documents; raises CatalogueError if either does not parse,
    their versions differ, or a code is malformed or repeated."""
    try:
        items_doc = tomllib.loads(items_toml)
        purposes_doc = tomllib.loads(purposes_toml)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogueError(f"catalogue is not TOML: {exc}") from None
    version = items_doc.get("version")
    if not isinstance(version, int) or purposes_doc.get("version") != version:
        raise CatalogueError("both catalogues need the same integer version")
    items: dict[str, DataItem] = {}
    for entry in _entries(items_doc, "item"):
        code = str(entry.get("code", ""))
        if not ITEM_CODE.fullmatch(code) or code in items:
            raise CatalogueError(f"item code {code!r} is malformed or repeated")
        try:
            kind = ItemKind(str(entry.get("kind")))
        except ValueError:
            raise CatalogueError(f"item {code!r} has no known kind") from None
        items[code] = DataItem(code, kind, str(entry.get("name", code)))
    purposes: dict[str, Purpose] = {}
    for entry in _entries(purposes_doc, "purpose"):
        code = str(entry.get("code", ""))
        if not PURPOSE_CODE.fullmatch(code) or code in purposes:
            raise CatalogueError(f"purpose code {code!r} is malformed or repeated")
        purposes[code] = Purpose(code, str(entry.get("name", code)))
    return Catalogue(version, items, purposes)


def load_catalogue(version: int = CATALOGUE_VERSION) -> Catalogue:
    """The catalogue ``version`` bundled with the package; raises CatalogueError if there
    is none."""
    folder = resources.files("authorizations") / "catalogues"
    try:
        items = (folder / f"items.v{version}.toml").read_text("utf-8")
        purposes = (folder / f"purposes.v{version}.toml").read_text("utf-8")
    except FileNotFoundError:
        raise CatalogueError(f"no catalogue version {version}") from None
    catalogue = parse_catalogue(items, purposes)
    if catalogue.version != version:
        raise CatalogueError(f"catalogue file v{version} says version {catalogue.version}")
    return catalogue


__all__ = [
    "CATALOGUE_VERSION",
    "ITEM_CODE",
    "PURPOSE_CODE",
    "Catalogue",
    "DataItem",
    "ItemKind",
    "Purpose",
    "covers",
    "in_scope",
    "load_catalogue",
    "parse_catalogue",
]
