"""The explorer's database: opening it (SQLite by default, PostgreSQL by URL), writing one
indexed block with the cursor in one transaction, and reading back what the indexer needs
to resume.

A crash between any two statements leaves the database at the last committed block: the
block's rows, its department updates and the cursor move together or not at all, and the
indexer resumes from the cursor.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, insert, select, update
from sqlalchemy.engine import make_url

from explorer import store_schema as t
from explorer.block_rows import BlockRows


@dataclass(frozen=True)
class Cursor:
    """The last block indexed whole."""

    height: int
    block_hash: str


def sqlite_url(path: Path) -> str:
    """The SQLAlchemy URL of an SQLite file."""
    return f"sqlite:///{path}"


def open_engine(url: str) -> Engine:
    """An engine on ``url``; SQLite gets WAL (the server reads while the indexer writes) and
    a busy timeout, so neither fails on the other's lock."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


class Store:
    """Reads and writes of the index."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str) -> Store:
        """Open the database at ``url`` and bring its schema up to date."""
        engine = open_engine(url)
        with engine.begin() as connection:
            t.migrate(connection)
        return cls(engine)

    def close(self) -> None:
        """Release the connections."""
        self.engine.dispose()

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reading."""
        with self.engine.connect() as connection:
            yield connection

    def cursor(self) -> Cursor | None:
        """The last block indexed whole, or None before genesis is indexed."""
        with self.read() as c:
            row = c.execute(select(t.cursor.c.height, t.cursor.c.block_hash)).first()
        return None if row is None else Cursor(int(row.height), str(row.block_hash))

    def header_raw(self, height: int) -> bytes | None:
        """The stored header encoding at ``height``."""
        with self.read() as c:
            raw = c.execute(
                select(t.blocks.c.header_raw).where(t.blocks.c.height == height)
            ).scalar()
        return None if raw is None else bytes(raw)

    def write_block(self, rows: BlockRows) -> None:
        """Add one block's rows and move the cursor to it, in one transaction."""
        self.write_blocks([rows])

    def write_blocks(self, blocks: list[BlockRows]) -> None:
        """Add consecutive blocks' rows and move the cursor to the last, in one transaction
        (fewer commits while catching up; a crash still leaves whole blocks only). Refuses
        blocks that do not follow the cursor."""
        with self.engine.begin() as c:
            found = c.execute(select(t.cursor.c.height).with_for_update()).scalar()
            for rows in blocks:
                _write_rows(c, rows, found)
                found = rows.height
            if blocks and c.execute(select(t.cursor.c.id)).first() is None:
                c.execute(
                    insert(t.cursor).values(id=1, height=found, block_hash=blocks[-1].block_hash)
                )
            elif blocks:
                c.execute(update(t.cursor).values(height=found, block_hash=blocks[-1].block_hash))

    def write_genesis_contracts(self, contracts: list[dict[str, Any]]) -> None:
        """Record the genesis system contracts and validator set, once, before block 0."""
        with self.engine.begin() as c:
            if c.execute(select(t.contracts.c.address).limit(1)).first() is None and contracts:
                c.execute(insert(t.contracts), contracts)

    def write_genesis_validators(self, members: list[dict[str, Any]]) -> None:
        """Record the genesis members as changes effective at height 0, once."""
        with self.engine.begin() as c:
            if c.execute(select(t.validator_changes.c.id).limit(1)).first() is None:
                c.execute(insert(t.validator_changes), members)

    def placed_contracts(self) -> list[tuple[str, str]]:
        """(address, name) of every recognised contract."""
        with self.read() as c:
            rows = c.execute(select(t.contracts.c.address, t.contracts.c.name)).all()
        return [(str(r.address), str(r.name)) for r in rows]

    def proposal_keys(self) -> dict[int, tuple[bytes, int]]:
        """Proposal id -> (key, power) of every recorded ValidatorGovernance proposal."""
        with self.read() as c:
            rows = c.execute(select(t.proposal_keys)).all()
        return {
            int(r.proposal_id): (bytes.fromhex(str(r.public_key)[2:]), int(r.power)) for r in rows
        }

    def set_changes(self) -> list[dict[str, Any]]:
        """Every executed validator change after genesis, in execution order."""
        with self.read() as c:
            rows = c.execute(
                select(t.validator_changes)
                .where(t.validator_changes.c.proposal_id.is_not(None))
                .order_by(t.validator_changes.c.id)
            ).all()
        return [dict(r._mapping) for r in rows]

    def log_access(
        self, *, at_ms: int, auditor: str | None, client: str, method: str, path: str, status: int
    ) -> None:
        """Record one answer the explorer gave."""
        with self.engine.begin() as c:
            c.execute(
                insert(t.accesses).values(
                    at_ms=at_ms,
                    auditor=auditor,
                    client=client[:64],
                    method=method[:8],
                    path=path[:2000],
                    status=status,
                )
            )


def _write_rows(c: Connection, rows: BlockRows, found: int | None) -> None:
    """One block's rows, on the cursor at ``found``."""
    expected = 0 if found is None else int(found) + 1
    if rows.height != expected:
        raise RuntimeError(f"block {rows.height} does not follow the cursor {found}")
    c.execute(insert(t.blocks).values(**rows.block))
    if rows.transactions:
        c.execute(insert(t.transactions), rows.transactions)
        _count(c, [("account", tx["sender"], "tx") for tx in rows.transactions])
    if rows.signers:
        c.execute(insert(t.signers), rows.signers)
    if rows.contracts:
        c.execute(insert(t.contracts), rows.contracts)
    if rows.proposal_keys:
        c.execute(insert(t.proposal_keys), rows.proposal_keys)
    if rows.set_changes:
        c.execute(insert(t.validator_changes), rows.set_changes)
    for event_row in rows.events:
        event_id = c.execute(insert(t.events).values(**event_row.row)).inserted_primary_key
        assert event_id is not None
        if event_row.subjects:
            c.execute(
                insert(t.event_subjects),
                [
                    {
                        "event_id": event_id[0],
                        "kind": k,
                        "subject": s,
                        "height": rows.height,
                    }
                    for k, s in event_row.subjects
                ],
            )
        _count(c, [(k, s, event_row.decoded.name) for k, s in event_row.subjects])
        if event_row.decoded.contract == "IssuerRegistry":
            _apply_department_event(c, event_row.decoded.name, event_row.decoded.args, rows)


def _count(c: Connection, keys: list[tuple[str, str, str]]) -> None:
    """Add one to the count of each (kind, subject, name)."""
    for kind, subject, name in keys:
        where = (
            t.subject_counts.c.kind == kind,
            t.subject_counts.c.subject == subject,
            t.subject_counts.c.name == name,
        )
        changed = c.execute(
            update(t.subject_counts).where(*where).values(count=t.subject_counts.c.count + 1)
        ).rowcount
        if changed == 0:
            c.execute(
                insert(t.subject_counts).values(kind=kind, subject=subject, name=name, count=1)
            )


def _apply_department_event(
    c: Connection, name: str, args: dict[str, Any] | Any, rows: BlockRows
) -> None:
    """Departments and their keys follow IssuerRegistry's events."""
    uscc = str(args.get("uscc", ""))
    if name == "DepartmentRegistered":
        c.execute(
            insert(t.departments).values(
                uscc=uscc, name=str(args["name"]), registered_height=rows.height, frozen=False
            )
        )
    elif name == "DepartmentFrozen":
        c.execute(
            update(t.departments)
            .where(t.departments.c.uscc == uscc)
            .values(frozen=bool(args["frozen"]))
        )
    elif name == "KeyAdded":
        c.execute(
            insert(t.department_keys).values(
                uscc=uscc,
                key_id=int(args["keyId"]),
                account=str(args["account"]),
                public_key=str(args["publicKey"]),
                roles=int(args["roles"]),
                valid_from=int(args["validFromBlock"]),
                valid_until=str(args["validUntilBlock"]),
                added_height=rows.height,
            )
        )
    elif name in ("KeyClosed", "KeyRolesChanged"):
        values = (
            {"valid_until": str(args["validUntilBlock"])}
            if name == "KeyClosed"
            else {"roles": int(args["roles"])}
        )
        c.execute(
            update(t.department_keys)
            .where(
                t.department_keys.c.uscc == uscc, t.department_keys.c.key_id == int(args["keyId"])
            )
            .values(**values)
        )


def loads_args(text: str | None) -> dict[str, Any]:
    """A stored ``args`` / ``call_args`` column as a dict."""
    return {} if not text else dict(json.loads(text))
