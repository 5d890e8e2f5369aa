"""The explorer's own tables (SQLAlchemy Core) and their versioned migrations.

The index is rebuilt from the chain at any time, so its migrations are a short ordered list of
steps kept in ``schema_version``; :func:`migrate` applies the missing ones in one transaction.
Every row of a block is written with the cursor in one transaction (see
:mod:`explorer.store`), so a crash leaves either the whole block or none of it.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    insert,
    select,
)

metadata = MetaData()

schema_version = Table(
    "explorer_schema_version",
    metadata,
    Column("version", Integer, primary_key=True),
)

cursor = Table(
    "explorer_cursor",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("height", BigInteger, nullable=False),
    Column("block_hash", String(66), nullable=False),
)
"""One row: the last block indexed whole."""

blocks = Table(
    "blocks",
    metadata,
    Column("height", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", String(66), nullable=False, unique=True),
    Column("parent_hash", String(66), nullable=False),
    Column("timestamp_ms", BigInteger, nullable=False),
    Column("proposer", String(42), nullable=False),
    Column("tx_count", Integer, nullable=False),
    Column("size", Integer, nullable=False),
    Column("gas_used", BigInteger, nullable=False),
    Column("state_root", String(66), nullable=False),
    Column("tx_root", String(66), nullable=False),
    Column("receipt_root", String(66), nullable=False),
    Column("validator_set_hash", String(66), nullable=False),
    Column("header_raw", LargeBinary, nullable=False),
    Column("certificate_raw", LargeBinary, nullable=True),
    Column("certificate_round", Integer, nullable=True),
    Column("signed_power", BigInteger, nullable=False),
    Column("total_power", BigInteger, nullable=False),
)

transactions = Table(
    "transactions",
    metadata,
    Column("hash", String(66), primary_key=True),
    Column("height", BigInteger, nullable=False),
    Column("position", Integer, nullable=False),
    Column("sender", String(42), nullable=False),
    Column("to_address", String(42), nullable=True),
    Column("status", Integer, nullable=False),
    Column("gas_used", BigInteger, nullable=False),
    Column("gas_limit", BigInteger, nullable=False),
    Column("contract_address", String(42), nullable=True),
    Column("contract", String(64), nullable=True),
    Column("call_name", String(64), nullable=True),
    Column("call_args", Text, nullable=True),
    Column("raw", LargeBinary, nullable=False),
    Column("receipt_raw", LargeBinary, nullable=False),
    Index("ix_transactions_height", "height", "position"),
    Index("ix_transactions_sender", "sender", "height"),
    Index("ix_transactions_to", "to_address", "height"),
)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("height", BigInteger, nullable=False),
    Column("tx_hash", String(66), nullable=False),
    Column("log_index", Integer, nullable=False),
    Column("contract", String(64), nullable=False),
    Column("address", String(42), nullable=False),
    Column("name", String(64), nullable=False),
    Column("args", Text, nullable=False),
    Index("ix_events_tx", "tx_hash", "log_index", unique=True),
    Index("ix_events_contract", "contract", "height"),
)
"""Decoded events of known contracts (logs of other contracts stay in the receipts)."""

event_subjects = Table(
    "event_subjects",
    metadata,
    Column("event_id", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("subject", String(80), nullable=False),
    Column("height", BigInteger, nullable=False),
    Index("ix_event_subjects_subject", "kind", "subject", "height"),
    Index("ix_event_subjects_event", "event_id"),
)
"""What each event is about (department, account, batch, leaf, license, proposal)."""

subject_counts = Table(
    "subject_counts",
    metadata,
    Column("kind", String(16), primary_key=True),
    Column("subject", String(80), primary_key=True),
    Column("name", String(64), primary_key=True),
    Column("count", BigInteger, nullable=False),
)
"""Events per subject and event name (and transactions per sender, name ``tx``), kept as
blocks are indexed so that a department's counts do not scan its history."""

signers = Table(
    "certificate_signers",
    metadata,
    Column("height", BigInteger, primary_key=True, autoincrement=False),
    Column("validator", String(42), primary_key=True),
    Column("signed", Boolean, nullable=False),
    Column("power", BigInteger, nullable=False),
    Index("ix_signers_validator", "validator", "height"),
)
"""One row per member of the set ruling a height: whether its precommit is in the
certificate."""

validator_changes = Table(
    "validator_changes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("effective_height", BigInteger, nullable=False),
    Column("executed_height", BigInteger, nullable=False),
    Column("address", String(42), nullable=False),
    Column("public_key", String(132), nullable=False),
    Column("power", BigInteger, nullable=False),
    Column("proposal_id", BigInteger, nullable=True),
)
"""Changes of the validator set (genesis members at height 0)."""

proposal_keys = Table(
    "proposal_keys",
    metadata,
    Column("proposal_id", BigInteger, primary_key=True, autoincrement=False),
    Column("public_key", String(132), nullable=False),
    Column("power", BigInteger, nullable=False),
)
"""The key each ValidatorGovernance proposal names (from its ``propose`` call)."""

contracts = Table(
    "contracts",
    metadata,
    Column("address", String(42), primary_key=True),
    Column("name", String(64), nullable=False),
    Column("height", BigInteger, nullable=False),
    Column("tx_hash", String(66), nullable=True),
)

departments = Table(
    "departments",
    metadata,
    Column("uscc", String(18), primary_key=True),
    Column("name", Text, nullable=False),
    Column("registered_height", BigInteger, nullable=False),
    Column("frozen", Boolean, nullable=False),
)

department_keys = Table(
    "department_keys",
    metadata,
    Column("uscc", String(18), primary_key=True),
    Column("key_id", BigInteger, primary_key=True, autoincrement=False),
    Column("account", String(42), nullable=False, index=True),
    Column("public_key", String(132), nullable=False),
    Column("roles", Integer, nullable=False),
    Column("valid_from", BigInteger, nullable=False),
    Column("valid_until", String(24), nullable=False),
    Column("added_height", BigInteger, nullable=False),
)

accesses = Table(
    "explorer_accesses",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at_ms", BigInteger, nullable=False),
    Column("auditor", String(42), nullable=True),
    Column("client", String(64), nullable=False),
    Column("method", String(8), nullable=False),
    Column("path", Text, nullable=False),
    Column("status", Integer, nullable=False),
)
"""Every page and API answer the explorer gave, and to whom."""

verification_jobs = Table(
    "verification_jobs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("started_ms", BigInteger, nullable=False),
    Column("auditor", String(42), nullable=True),
    Column("from_height", BigInteger, nullable=False),
    Column("to_height", BigInteger, nullable=False),
    Column("reexecute", Boolean, nullable=False),
    Column("state", String(16), nullable=False),
    Column("done_height", BigInteger, nullable=True),
    Column("report", Text, nullable=True),
)


def _create_v1(connection: Connection) -> None:
    metadata.create_all(connection)


MIGRATIONS: tuple[Callable[[Connection], None], ...] = (_create_v1,)
"""Step n (1-based) brings the schema from version n-1 to n."""


def current_version(connection: Connection) -> int:
    """The version the database is at (0 when it has no explorer tables)."""
    if not connection.dialect.has_table(connection, schema_version.name):
        return 0
    found = connection.execute(select(schema_version.c.version)).scalars().all()
    return max(found, default=0)


def migrate(connection: Connection) -> int:
    """Apply the missing migrations; returns the version reached. A database newer than this
    code is refused."""
    version = current_version(connection)
    if version > len(MIGRATIONS):
        raise RuntimeError(f"explorer database is at schema {version}, newer than this code")
    for number, step in enumerate(MIGRATIONS[version:], start=version + 1):
        step(connection)
        connection.execute(insert(schema_version).values(version=number))
    return len(MIGRATIONS)
