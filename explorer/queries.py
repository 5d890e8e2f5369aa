"""Read queries behind the pages. Each reads a bounded number of rows through an index, so a
page costs the same on a chain of a thousand transactions as on one of millions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Integer, and_, cast, desc, func, literal, select, union_all

from explorer import store_schema as t
from explorer.store import loads_args

PAGE_ROWS = 50
"""Rows per list page."""


def _dict(row: Any) -> dict[str, Any]:
    return dict(row._mapping)


def head(c: Connection) -> dict[str, Any] | None:
    """The last indexed block."""
    row = c.execute(select(t.blocks).order_by(desc(t.blocks.c.height)).limit(1)).first()
    return None if row is None else _dict(row)


def recent_blocks(
    c: Connection, *, before: int | None = None, limit: int = 10
) -> list[dict[str, Any]]:
    """Blocks below ``before`` (default: from the head), newest first."""
    query = select(
        t.blocks.c.height,
        t.blocks.c.hash,
        t.blocks.c.timestamp_ms,
        t.blocks.c.proposer,
        t.blocks.c.tx_count,
        t.blocks.c.size,
        t.blocks.c.signed_power,
        t.blocks.c.total_power,
    ).order_by(desc(t.blocks.c.height))
    if before is not None:
        query = query.where(t.blocks.c.height < before)
    return [_dict(r) for r in c.execute(query.limit(limit))]


def recent_transactions(c: Connection, limit: int = 10) -> list[dict[str, Any]]:
    """The latest transactions, newest first."""
    query = (
        select(
            t.transactions.c.hash,
            t.transactions.c.height,
            t.transactions.c.sender,
            t.transactions.c.contract,
            t.transactions.c.call_name,
            t.transactions.c.status,
        )
        .order_by(desc(t.transactions.c.height), desc(t.transactions.c.position))
        .limit(limit)
    )
    return [_dict(r) for r in c.execute(query)]


def transactions_per_minute(c: Connection, head_block: dict[str, Any]) -> int:
    """Transactions in the blocks of the minute up to the head (from the last 600 blocks)."""
    since = int(head_block["timestamp_ms"]) - 60_000
    total = c.execute(
        select(func.coalesce(func.sum(t.blocks.c.tx_count), 0)).where(
            t.blocks.c.height > int(head_block["height"]) - 600,
            t.blocks.c.timestamp_ms > since,
        )
    ).scalar()
    return int(total or 0)


def block(c: Connection, height: int) -> dict[str, Any] | None:
    """One block."""
    row = c.execute(select(t.blocks).where(t.blocks.c.height == height)).first()
    return None if row is None else _dict(row)


def block_height_by_hash(c: Connection, block_hash: str) -> int | None:
    """The height of the block with ``block_hash``."""
    found = c.execute(select(t.blocks.c.height).where(t.blocks.c.hash == block_hash)).scalar()
    return None if found is None else int(found)


def block_transactions(c: Connection, height: int) -> list[dict[str, Any]]:
    """The transactions of a block, in order."""
    query = (
        select(
            t.transactions.c.hash,
            t.transactions.c.sender,
            t.transactions.c.to_address,
            t.transactions.c.contract,
            t.transactions.c.call_name,
            t.transactions.c.status,
            t.transactions.c.gas_used,
        )
        .where(t.transactions.c.height == height)
        .order_by(t.transactions.c.position)
        .limit(1000)
    )
    return [_dict(r) for r in c.execute(query)]


def signers(c: Connection, height: int) -> list[dict[str, Any]]:
    """The members of the set ruling ``height`` and whether each signed its certificate."""
    query = select(t.signers).where(t.signers.c.height == height).order_by(t.signers.c.validator)
    return [_dict(r) for r in c.execute(query)]


def transaction(c: Connection, tx_hash: str) -> dict[str, Any] | None:
    """One transaction with its decoded call."""
    row = c.execute(select(t.transactions).where(t.transactions.c.hash == tx_hash)).first()
    if row is None:
        return None
    found = _dict(row)
    found["args"] = loads_args(found["call_args"])
    return found


def events_of_transaction(c: Connection, tx_hash: str) -> list[dict[str, Any]]:
    """The decoded events of a transaction."""
    query = select(t.events).where(t.events.c.tx_hash == tx_hash).order_by(t.events.c.log_index)
    return [{**_dict(r), "args": loads_args(r.args)} for r in c.execute(query)]


def subject_events(
    c: Connection, kind: str, subject: str, *, limit: int = PAGE_ROWS, oldest_first: bool = False
) -> list[dict[str, Any]]:
    """Events about one subject (department, account, batch, leaf, license, proposal)."""
    order = t.event_subjects.c.height if oldest_first else desc(t.event_subjects.c.height)
    query = (
        select(t.events)
        .join(t.event_subjects, t.event_subjects.c.event_id == t.events.c.id)
        .where(t.event_subjects.c.kind == kind, t.event_subjects.c.subject == subject)
        .order_by(order, t.events.c.id if oldest_first else desc(t.events.c.id))
        .limit(limit)
    )
    return [{**_dict(r), "args": loads_args(r.args)} for r in c.execute(query)]


def subject_counts(c: Connection, kind: str, subject: str) -> dict[str, int]:
    """Event name -> count for one subject (``tx`` for an account's transactions)."""
    query = select(t.subject_counts.c.name, t.subject_counts.c.count).where(
        t.subject_counts.c.kind == kind, t.subject_counts.c.subject == subject
    )
    return {str(r.name): int(r.count) for r in c.execute(query)}


def contract_events(
    c: Connection, contracts: tuple[str, ...], *, before: int | None = None, limit: int = PAGE_ROWS
) -> list[dict[str, Any]]:
    """The latest events of the named contracts."""
    query = select(t.events).where(t.events.c.contract.in_(contracts))
    if before is not None:
        query = query.where(t.events.c.height < before)
    query = query.order_by(desc(t.events.c.height), desc(t.events.c.id)).limit(limit)
    return [{**_dict(r), "args": loads_args(r.args)} for r in c.execute(query)]


def account_transactions(
    c: Connection, address: str, limit: int = PAGE_ROWS
) -> list[dict[str, Any]]:
    """Transactions an account signed, newest first."""
    query = (
        select(
            t.transactions.c.hash,
            t.transactions.c.height,
            t.transactions.c.contract,
            t.transactions.c.call_name,
            t.transactions.c.status,
        )
        .where(t.transactions.c.sender == address)
        .order_by(desc(t.transactions.c.height), desc(t.transactions.c.position))
        .limit(limit)
    )
    return [_dict(r) for r in c.execute(query)]


def department(c: Connection, uscc: str) -> dict[str, Any] | None:
    """A department and its keys."""
    row = c.execute(select(t.departments).where(t.departments.c.uscc == uscc)).first()
    if row is None:
        return None
    found = _dict(row)
    keys = c.execute(
        select(t.department_keys)
        .where(t.department_keys.c.uscc == uscc)
        .order_by(t.department_keys.c.key_id)
    )
    found["keys"] = [_dict(k) for k in keys]
    return found


def departments(c: Connection) -> list[dict[str, Any]]:
    """Every registered department."""
    return [
        _dict(r) for r in c.execute(select(t.departments).order_by(t.departments.c.uscc).limit(500))
    ]


@dataclass(frozen=True)
class Label:
    """Who an address is, as far as the chain says."""

    uscc: str | None
    """The department whose key it is."""
    name: str | None
    """The department's name, or a genesis validator's name."""


def department_of_account(c: Connection, address: str) -> Label | None:
    """The department whose key derives to ``address``."""
    row = c.execute(
        select(t.departments.c.uscc, t.departments.c.name)
        .join(t.department_keys, t.department_keys.c.uscc == t.departments.c.uscc)
        .where(t.department_keys.c.account == address)
        .limit(1)
    ).first()
    return None if row is None else Label(str(row.uscc), str(row.name))


def labels(c: Connection, addresses: set[str]) -> dict[str, Label]:
    """Department labels of the addresses that belong to a department."""
    if not addresses:
        return {}
    rows = c.execute(
        select(t.department_keys.c.account, t.departments.c.uscc, t.departments.c.name)
        .join(t.departments, t.department_keys.c.uscc == t.departments.c.uscc)
        .where(t.department_keys.c.account.in_(sorted(addresses)))
    )
    return {str(r.account): Label(str(r.uscc), str(r.name)) for r in rows}


def validator_changes(c: Connection) -> list[dict[str, Any]]:
    """Every change of the validator set, genesis members first."""
    query = select(t.validator_changes).order_by(t.validator_changes.c.id).limit(1000)
    return [_dict(r) for r in c.execute(query)]


def participation(c: Connection, first: int, last: int) -> list[dict[str, Any]]:
    """Per validator over heights ``first``..``last``: heights it was a member, heights it
    signed, and the heights it missed (the latest 20)."""
    window = and_(t.signers.c.height >= first, t.signers.c.height <= last)
    totals = c.execute(
        select(
            t.signers.c.validator,
            func.count().label("member"),
            func.sum(cast(t.signers.c.signed, Integer)).label("signed"),
        )
        .where(window)
        .group_by(t.signers.c.validator)
        .order_by(t.signers.c.validator)
    ).all()
    result = []
    for row in totals:
        missed = c.execute(
            select(t.signers.c.height)
            .where(window, t.signers.c.validator == row.validator, t.signers.c.signed.is_(False))
            .order_by(desc(t.signers.c.height))
            .limit(20)
        ).scalars()
        result.append(
            {
                "validator": row.validator,
                "member": int(row.member),
                "signed": int(row.signed or 0),
                "missed": [int(h) for h in missed],
            }
        )
    return result


HASH_KINDS = ("tx", "block", "batch", "leaf", "license")
"""What a 32-byte hash may name, in the order the search box prefers them."""


def hash_kinds(c: Connection, value: str) -> set[str]:
    """Which of HASH_KINDS ``value`` names, in one statement: an EXISTS probe of each
    index (transactions and blocks by hash, event subjects by kind and subject) joined by
    UNION ALL, so a search costs one round trip to the database, not five."""
    probes = [
        select(t.transactions.c.hash).where(t.transactions.c.hash == value),
        select(t.blocks.c.height).where(t.blocks.c.hash == value),
        *(
            select(t.event_subjects.c.event_id).where(
                t.event_subjects.c.kind == kind, t.event_subjects.c.subject == value
            )
            for kind in HASH_KINDS[2:]
        ),
    ]
    query = union_all(
        *(
            select(literal(kind).label("kind")).where(probe.exists())
            for kind, probe in zip(HASH_KINDS, probes, strict=True)
        )
    )
    return {str(kind) for kind in c.execute(query).scalars()}


def subject_exists(c: Connection, kind: str, subject: str) -> bool:
    """Whether any event is about ``subject`` of ``kind``."""
    query = select(t.event_subjects.c.event_id).where(
        t.event_subjects.c.kind == kind, t.event_subjects.c.subject == subject
    )
    return c.execute(query.limit(1)).first() is not None


def contracts(c: Connection) -> list[dict[str, Any]]:
    """The recognised contracts."""
    return [_dict(r) for r in c.execute(select(t.contracts).order_by(t.contracts.c.height))]
