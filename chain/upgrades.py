"""Consensus parameters that change at an agreed height: the ``[[upgrades]]`` schedule of a
genesis file.

Each entry says from which block on a parameter takes a new value::

    [[upgrades]]
    height = 120000                   # the first block the new value rules (>= 1)
    parameter = "block_gas_limit"     # one of SCHEDULED_PARAMETERS
    value = 80000000

The schedule is not part of the genesis block: the genesis hash stays the same whatever the
schedule says, so a chain that is already running adopts a schedule by every node loading the
same list before the height (a rolling restart). Until that height the value of the genesis
(or of the previous entry) rules; from it on, the new one, for block production and block
validation alike. A node whose schedule differs judges blocks from that height differently:
it refuses the blocks the others make under the value it does not know, and says why.

The rules checked here are the ones that need nothing but the list: known parameters, values
within the parameter's bounds, heights of at least 1, at most :data:`~chain.limits.MAX_UPGRADES`
entries, and heights in order (never decreasing; strictly increasing per parameter, so a
height has at most one value of each parameter). What needs the node's own chain (no entry at
or below the head it has not applied before) is checked by :mod:`node.upgrade_schedule`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from chain import encoding as enc
from chain.crypto.sm3 import sm3
from chain.errors import GenesisError
from chain.limits import MAX_UPGRADES
from chain.primitives import Hash32

MAX_INT64 = 2**63 - 1
"""Largest value or height an entry may hold (a TOML integer)."""

MIN_BLOCK_GAS_LIMIT = 21_000
"""The least block gas limit an entry may set: the intrinsic gas of the simplest transaction.
A smaller limit would leave no transaction valid, a halt no schedule should be able to
cause."""


@dataclass(frozen=True)
class ScheduledParameter:
    """A consensus parameter the schedule may change."""

    name: str
    """How entries name it (the genesis key of its initial value)."""
    minimum: int
    """The least value an entry may set."""
    maximum: int
    """The largest value an entry may set."""
    meaning: str
    """What it bounds, for error messages and docs."""


SCHEDULED_PARAMETERS: dict[str, ScheduledParameter] = {
    "block_gas_limit": ScheduledParameter(
        "block_gas_limit",
        MIN_BLOCK_GAS_LIMIT,
        MAX_INT64,
        "the gas of one block: no transaction may ask for more, and the gas limits of a "
        "block's transactions together may not exceed it",
    ),
}
"""The parameters a schedule may change, by name."""


class ScheduleError(GenesisError):
    """A parameter schedule that is refused; ``field`` is the offending entry's path
    (``upgrades[2].parameter``), ``reason`` what is wrong with it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.field = field
        """Path of the offending value in the genesis document."""
        self.reason = reason
        """What is wrong with it."""


class UnknownParameter(ScheduleError):
    """An entry naming a parameter that is not in :data:`SCHEDULED_PARAMETERS`."""


class ScheduleOutOfOrder(ScheduleError):
    """An entry whose height is below the previous entry's, or not above the previous entry
    for the same parameter."""


@dataclass(frozen=True)
class Upgrade:
    """One change of a consensus parameter."""

    height: int
    """The first block whose production and validation use ``value``."""
    parameter: str
    """The parameter that changes (a key of :data:`SCHEDULED_PARAMETERS`)."""
    value: int
    """Its value from ``height`` on."""

    def describe(self) -> str:
        """``block_gas_limit = 80000000 from height 120000``."""
        return f"{self.parameter} = {self.value} from height {self.height}"


@dataclass(frozen=True)
class ParameterSchedule:
    """The upgrades of a chain, in document order (which is height order)."""

    upgrades: tuple[Upgrade, ...] = ()
    """Every entry; :func:`parse_schedule` guarantees the order rules."""

    def value_at(self, parameter: str, height: int, initial: int) -> int:
        """The value of ``parameter`` ruling the block at ``height``: that of the last entry
        for it at or below ``height``, else ``initial`` (the genesis value)."""
        value = initial
        for upgrade in self.upgrades:
            if upgrade.height > height:
                break
            if upgrade.parameter == parameter:
                value = upgrade.value
        return value

    def changes(self, parameter: str) -> tuple[tuple[int, int], ...]:
        """``(height, value)`` of every entry for ``parameter``, in height order."""
        return tuple((u.height, u.value) for u in self.upgrades if u.parameter == parameter)

    def at_or_below(self, height: int) -> tuple[Upgrade, ...]:
        """The entries that rule blocks at or below ``height`` (already in force there)."""
        return tuple(u for u in self.upgrades if u.height <= height)

    def digest(self) -> Hash32:
        """SM3 of the canonical encoding of the entries: equal on every node that loaded the
        same schedule, so operators can compare nodes at a glance."""
        return sm3(
            enc.encode(
                [
                    [enc.encode_int(u.height), u.parameter.encode(), enc.encode_int(u.value)]
                    for u in self.upgrades
                ]
            )
        )

    def to_toml(self) -> list[str]:
        """The ``[[upgrades]]`` tables, as lines of TOML, that :func:`parse_schedule` reads
        back equal."""
        lines: list[str] = []
        for upgrade in self.upgrades:
            lines += [
                "",
                "[[upgrades]]",
                f"height = {upgrade.height}",
                f'parameter = "{upgrade.parameter}"',
                f"value = {upgrade.value}",
            ]
        return lines


NO_UPGRADES = ParameterSchedule()
"""The schedule of a genesis without ``[[upgrades]]``: the genesis values rule for ever."""


def parse_schedule(raw: object | None, field: str = "upgrades") -> ParameterSchedule:
    """Check the parsed TOML value of ``[[upgrades]]`` (``None`` when absent) and return the
    schedule. Raises ScheduleError (UnknownParameter, ScheduleOutOfOrder) naming the first
    offending entry; nothing is returned for a list with any problem."""
    if raw is None:
        return NO_UPGRADES
    if not isinstance(raw, list):
        raise ScheduleError(field, "expected an array of tables")
    if len(raw) > MAX_UPGRADES:
        raise ScheduleError(field, f"more than {MAX_UPGRADES} entries")
    upgrades = tuple(_parse_entry(item, f"{field}[{index}]") for index, item in enumerate(raw))
    check_order(upgrades, field)
    return ParameterSchedule(upgrades)


def check_order(upgrades: Iterable[Upgrade], field: str = "upgrades") -> None:
    """Raise ScheduleOutOfOrder unless heights never decrease and each parameter's entries
    have strictly increasing heights."""
    previous = 0
    last_of: dict[str, int] = {}
    for index, upgrade in enumerate(upgrades):
        where = f"{field}[{index}].height"
        if upgrade.height < previous:
            raise ScheduleOutOfOrder(
                where, f"{upgrade.height} is below the previous entry's height {previous}"
            )
        if last_of.get(upgrade.parameter, 0) >= upgrade.height:
            raise ScheduleOutOfOrder(
                where, f"{upgrade.parameter} already changes at height {upgrade.height}"
            )
        previous = last_of[upgrade.parameter] = upgrade.height


_ENTRY_KEYS = ("height", "parameter", "value")


def _parse_entry(item: object, field: str) -> Upgrade:
    if not isinstance(item, dict):
        raise ScheduleError(field, "expected a table")
    unknown = sorted(set(item) - set(_ENTRY_KEYS))
    if unknown:
        raise ScheduleError(f"{field}.{unknown[0]}", "unknown key")
    for key in _ENTRY_KEYS:
        if key not in item:
            raise ScheduleError(f"{field}.{key}", "missing")
    name = item["parameter"]
    if not isinstance(name, str):
        raise ScheduleError(f"{field}.parameter", "expected a string")
    parameter = SCHEDULED_PARAMETERS.get(name)
    if parameter is None:
        known = ", ".join(sorted(SCHEDULED_PARAMETERS))
        raise UnknownParameter(
            f"{field}.parameter", f"unknown parameter {name[:64]!r} (known: {known})"
        )
    return Upgrade(
        height=_integer(item["height"], f"{field}.height", 1, MAX_INT64),
        parameter=name,
        value=_integer(item["value"], f"{field}.value", parameter.minimum, parameter.maximum),
    )


def _integer(value: object, field: str, minimum: int, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ScheduleError(field, "expected an integer")
    if not minimum <= value <= maximum:
        raise ScheduleError(field, f"must be between {minimum} and {maximum}")
    return value
