"""What one transaction of the access writer reads and changes: the live state of the
authorizations its attempts cite (granted, revoked, uses made, terms) and the heads of
their hash-chained streams.

Read for the whole group at its start, on a read snapshot outside the write turn, in two
statements whatever the group's size; inside the writer's transaction :meth:`GroupState.unchanged`
reads again what the group was built on (so a revocation or a use committed meanwhile, by
this process or another, is seen by the very next attempt: the group is then built again
on the transaction's own reads); written back at its end in at most three statements (the
uses counted, the streams begun, the heads moved). Core statements: the ORM's identity map
and unit of work cost more than these rows."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Connection,
    Integer,
    String,
    Table,
    bindparam,
    insert,
    literal_column,
    null,
    select,
    union_all,
    update,
)
from sqlalchemy import cast as sql_cast

from registry.authorizations.models import AccessStream, AuthorizationRow
from sdk.data_receipts import GENESIS

_AUTHORIZATIONS = cast(Table, AuthorizationRow.__table__)
_STREAMS = cast(Table, AccessStream.__table__)

_READ_AUTHORIZATIONS = select(
    _AUTHORIZATIONS.c.id,
    _AUTHORIZATIONS.c.granted_at,
    _AUTHORIZATIONS.c.revoked_at,
    _AUTHORIZATIONS.c.uses_made,
    _AUTHORIZATIONS.c.terms_hash,
    _AUTHORIZATIONS.c.terms_json,
).where(_AUTHORIZATIONS.c.id.in_(bindparam("ids", expanding=True)))
_READ_STREAMS = select(_STREAMS.c.stream, _STREAMS.c.length, _STREAMS.c.head).where(
    _STREAMS.c.stream.in_(bindparam("ids", expanding=True))
)
_CHECK = union_all(
    select(
        literal_column("'a'", String).label("kind"),
        _AUTHORIZATIONS.c.id.label("key"),
        _AUTHORIZATIONS.c.granted_at.label("first"),
        _AUTHORIZATIONS.c.revoked_at.label("second"),
        _AUTHORIZATIONS.c.uses_made.label("third"),
        _AUTHORIZATIONS.c.terms_hash.label("text"),
    ).where(_AUTHORIZATIONS.c.id.in_(bindparam("ids", expanding=True))),
    select(
        literal_column("'s'", String),
        _STREAMS.c.stream,
        sql_cast(_STREAMS.c.length, BigInteger),
        sql_cast(null(), BigInteger),
        sql_cast(null(), Integer),
        _STREAMS.c.head,
    ).where(_STREAMS.c.stream.in_(bindparam("ids", expanding=True))),
)
"""What a group was decided on, in ONE statement: each cited authorization's (``a``,
id, granted, revoked, uses made, terms hash) and each stream's (``s``, stream, length, -,
-, head)."""
_COUNT_USES = (
    update(_AUTHORIZATIONS)
    .where(_AUTHORIZATIONS.c.id == bindparam("row_id"))
    .values(uses_made=bindparam("uses"))
)
_MOVE_HEAD = (
    update(_STREAMS)
    .where(_STREAMS.c.stream == bindparam("row_stream"))
    .values(length=bindparam("new_length"), head=bindparam("new_head"))
)


@dataclass
class LiveAuthorization:
    """An authorization as the transaction read it, with the uses it counted since."""

    id: str
    granted_at: int | None
    """When it was granted (None: requested, never granted)."""
    revoked_at: int | None
    """When it was revoked, if it was."""
    uses_made: int
    """Allowed accesses so far, this transaction's included."""
    terms_hash: str
    """Hex hash of its terms."""
    terms_json: str
    """Its terms as stored."""
    uses_read: int
    """``uses_made`` as read."""


@dataclass
class StreamHead:
    """One access stream as the transaction read it, moved by the entries appended."""

    stream: str
    length: int
    """Entries in it, this transaction's included (the next entry's position)."""
    head: str
    """Hex hash of its last entry (the genesis hash for an empty stream)."""
    stored: bool
    """Whether its row existed when read (else it is inserted)."""
    length_read: int
    """``length`` as read."""


class GroupState:
    """The authorizations and streams of one group, read on ``connection`` (see the module
    docstring)."""

    def __init__(self, connection: Connection, cited: Iterable[str]) -> None:
        """Read every authorization in ``cited`` and the stream of each on ``connection``."""
        self.ids = ids = sorted(set(cited))
        self.authorizations: dict[str, LiveAuthorization] = {}
        self.streams: dict[str, StreamHead] = {}
        self._read: set[tuple[Any, ...]] = set()
        if not ids:
            return
        for row in connection.execute(_READ_AUTHORIZATIONS, {"ids": ids}):
            self._read.add(
                ("a", row.id, row.granted_at, row.revoked_at, row.uses_made, row.terms_hash)
            )
            self.authorizations[row.id] = LiveAuthorization(
                row.id,
                row.granted_at,
                row.revoked_at,
                row.uses_made,
                row.terms_hash,
                row.terms_json,
                row.uses_made,
            )
        for stored in connection.execute(_READ_STREAMS, {"ids": ids}):
            self._read.add(("s", stored.stream, stored.length, None, None, stored.head))
            self.streams[stored.stream] = StreamHead(
                stored.stream, stored.length, stored.head, stored=True, length_read=stored.length
            )

    def unchanged(self, connection: Connection) -> bool:
        """Whether the cited authorizations (granted, revoked, uses made, terms) and their
        streams (length, head) are on ``connection`` — the writer's transaction — as they
        were read: nobody granted, revoked, counted a use or appended since."""
        if not self.ids:
            return True
        found = {tuple(row) for row in connection.execute(_CHECK, {"ids": self.ids})}
        return found == self._read

    def authorization(self, authorization_id: str) -> LiveAuthorization | None:
        """The cited authorization, or None if the registry has none of this id."""
        return self.authorizations.get(authorization_id)

    def stream(self, stream: str) -> StreamHead:
        """The stream, begun at the genesis hash if it has no entry yet."""
        found = self.streams.get(stream)
        if found is None:
            found = self.streams[stream] = StreamHead(stream, 0, GENESIS.hex(), False, 0)
        return found

    def write_back(self, connection: Connection) -> None:
        """Store the uses counted and the streams' new heads on ``connection``."""
        uses = [
            {"row_id": live.id, "uses": live.uses_made}
            for live in self.authorizations.values()
            if live.uses_made != live.uses_read
        ]
        begun: list[dict[str, Any]] = []
        moved: list[dict[str, Any]] = []
        for head in self.streams.values():
            if not head.stored:
                begun.append({"stream": head.stream, "length": head.length, "head": head.head})
            elif head.length != head.length_read:
                moved.append(
                    {"row_stream": head.stream, "new_length": head.length, "new_head": head.head}
                )
        if uses:
            connection.execute(_COUNT_USES, uses)
        if begun:
            connection.execute(insert(_STREAMS), begun)
        if moved:
            connection.execute(_MOVE_HEAD, moved)


__all__ = ["GroupState", "LiveAuthorization", "StreamHead"]
