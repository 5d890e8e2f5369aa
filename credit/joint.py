"""Joint reward and punishment (联合奖惩): a catalogue of measures by list type and activity,
held as versioned data (``credit/measures/*.toml``), and :func:`check`, which an approving
department calls during 审批: is this subject allowed, restricted or favoured for this
activity on this date, and why — every list entry, and the records behind it."""

from __future__ import annotations

import datetime
import enum
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from chain.bounded_toml import TomlLimitError, loads_toml_bounded
from chain.crypto import sm3
from chain.primitives import Hash32
from credit.errors import RuleSetError
from credit.records import CreditRecord, ListEntry, ListExit, ListType, NaturalKey
from credit.rulesets import MAX_RULE_FILE_BYTES, MAX_RULE_FILE_DEPTH
from sdk import canonical

__all__ = [
    "BUNDLED_CATALOGUE",
    "MAX_MEASURES",
    "Catalogue",
    "CheckResult",
    "Decision",
    "Effect",
    "Measure",
    "Reason",
    "SubjectState",
    "bundled_catalogue",
    "check",
    "entry_active",
    "parse_catalogue",
]

BUNDLED_CATALOGUE = "cn-joint-measures.toml"
"""The catalogue shipped in ``credit/measures``."""

MAX_MEASURES = 1_000
"""Most measures a catalogue may hold."""

CATALOGUE_HASH_PREFIX = b"lianxin/credit/measures/v1\x00"
"""Domain separation of catalogue hashes."""


class Effect(enum.StrEnum):
    """What a measure does to an activity."""

    RESTRICTED = "restricted"
    """Punishment: the activity is restricted or refused."""
    FAVOURED = "favoured"
    """Reward: the activity is eased."""


class Decision(enum.StrEnum):
    """The answer of :func:`check`."""

    ALLOWED = "allowed"
    """No measure applies."""
    RESTRICTED = "restricted"
    """At least one punishment applies (rewards are then not granted)."""
    FAVOURED = "favoured"
    """At least one reward applies and no punishment."""


@dataclass(frozen=True)
class Measure:
    """One measure of the catalogue."""

    id: str
    """Stable identifier within the catalogue."""
    list_type: ListType
    """The list whose members it applies to."""
    activity: str
    """The activity it concerns (``government_procurement``…)."""
    effect: Effect
    """Restricted or favoured."""
    name: str
    """The measure as the catalogue words it (限制参与政府采购)."""
    basis: str
    """Its legal basis."""


@dataclass(frozen=True)
class Catalogue:
    """A versioned catalogue of measures."""

    id: str
    """Stable identifier."""
    version: int
    """Version of its content."""
    title: str
    """Title."""
    measures: tuple[Measure, ...]
    """The measures, in file order."""
    content_hash: Hash32
    """SM3 of the canonical form of the parsed file: what is anchored."""


@dataclass(frozen=True)
class SubjectState:
    """What is known of one subject when it is checked: its list entries and exits, and
    its records (those the entries rest on among them)."""

    entries: Sequence[ListEntry]
    """Every list entry of the subject."""
    exits: Sequence[ListExit]
    """Every exit from those lists."""
    records: Sequence[CreditRecord]
    """The subject's records."""


@dataclass(frozen=True)
class Reason:
    """Why a measure applies: the measure, the list entry, and the records behind it."""

    measure: Measure
    """The measure applied."""
    entry: ListEntry
    """The list entry that triggers it."""
    records: tuple[CreditRecord, ...]
    """The subject's records named by the entry's basis."""


@dataclass(frozen=True)
class CheckResult:
    """The answer of :func:`check`, with every reason."""

    decision: Decision
    """Allowed, restricted or favoured."""
    activity: str
    """The activity checked."""
    on: datetime.date
    """The date checked."""
    reasons: tuple[Reason, ...]
    """Every measure that applies (punishments first, then rewards)."""
    catalogue_id: str
    """The catalogue consulted."""
    catalogue_version: int
    """Its version."""
    catalogue_hash: Hash32
    """Its content hash."""


def _text(table: dict[str, Any], key: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value:
        raise RuleSetError("bad_field", f"{key} must be non-empty text")
    return value


def parse_catalogue(text: str) -> Catalogue:
    """A catalogue from the text of its TOML file. Raises :class:`RuleSetError` for a
    file too large or deep, not TOML, or not of the expected shape (unknown list type or
    effect, duplicate measure ids, more than :data:`MAX_MEASURES`)."""
    try:
        content = loads_toml_bounded(
            text, max_bytes=MAX_RULE_FILE_BYTES, max_depth=MAX_RULE_FILE_DEPTH
        )
    except TomlLimitError as error:
        raise RuleSetError(error.reason, str(error)) from error
    version = content.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise RuleSetError("bad_field", "version must be an integer of 1 or more")
    rows = content.get("measures")
    if not isinstance(rows, list) or not rows or len(rows) > MAX_MEASURES:
        raise RuleSetError("bad_field", f"measures must be 1–{MAX_MEASURES} tables")
    measures: list[Measure] = []
    for row in rows:
        if not isinstance(row, dict):
            raise RuleSetError("bad_field", "each measure is a table")
        try:
            measure = Measure(
                id=_text(row, "id"),
                list_type=ListType(_text(row, "list_type")),
                activity=_text(row, "activity"),
                effect=Effect(_text(row, "effect")),
                name=_text(row, "name"),
                basis=_text(row, "basis"),
            )
        except ValueError as error:
            raise RuleSetError("bad_field", f"measure: {error}") from error
        measures.append(measure)
    if len({measure.id for measure in measures}) != len(measures):
        raise RuleSetError("duplicate_measure", "two measures share an id")
    return Catalogue(
        id=_text(content, "id"),
        version=version,
        title=_text(content, "title"),
        measures=tuple(measures),
        content_hash=sm3(CATALOGUE_HASH_PREFIX + canonical.canonical_json(content)),
    )


def bundled_catalogue() -> Catalogue:
    """The catalogue shipped with the package."""
    text = resources.files("credit.measures").joinpath(BUNDLED_CATALOGUE).read_text("utf-8")
    return parse_catalogue(text)


def entry_active(entry: ListEntry, exits: Sequence[ListExit], on: datetime.date) -> bool:
    """Whether ``entry`` is in force on ``on``: entered on or before it, not yet at its
    planned exit date, and not ended by an exit dated on or before it."""
    if entry.entry_date > on:
        return False
    if entry.planned_exit_date is not None and on >= entry.planned_exit_date:
        return False
    key = entry.natural_key
    return not any(exit.entry == key and exit.exit_date <= on for exit in exits)


def _records_behind(entry: ListEntry, records: Sequence[CreditRecord]) -> tuple[CreditRecord, ...]:
    wanted: set[NaturalKey] = set(entry.basis_records)
    return tuple(record for record in records if record.natural_key in wanted)


def check(
    state: SubjectState, activity: str, on: datetime.date, catalogue: Catalogue
) -> CheckResult:
    """Whether the subject described by ``state`` is allowed, restricted or favoured for
    ``activity`` on ``on`` under ``catalogue``, with every reason: each measure of the
    activity whose list the subject is on that day, with the entry and the records behind
    it. A restriction outweighs any reward."""
    measures = [measure for measure in catalogue.measures if measure.activity == activity]
    reasons: list[Reason] = []
    for entry in state.entries:
        if not entry_active(entry, state.exits, on):
            continue
        for measure in measures:
            if measure.list_type is entry.list_type:
                reasons.append(Reason(measure, entry, _records_behind(entry, state.records)))
    reasons.sort(key=lambda reason: reason.measure.effect is not Effect.RESTRICTED)
    effects = {reason.measure.effect for reason in reasons}
    if Effect.RESTRICTED in effects:
        decision = Decision.RESTRICTED
    elif Effect.FAVOURED in effects:
        decision = Decision.FAVOURED
    else:
        decision = Decision.ALLOWED
    return CheckResult(
        decision,
        activity,
        on,
        tuple(reasons),
        catalogue.id,
        catalogue.version,
        catalogue.content_hash,
    )
