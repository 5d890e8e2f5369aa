"""The registry's one narrow door to SQLAlchemy: engine creation (at startup, never at
import), schema migrations, and sessions."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker

from registry.settings import RegistrySettings
from registry.write_turn import WriteTurn, write_turn_path

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
"""The Alembic script location."""

SQLITE_BUSY_TIMEOUT_MS = 30_000
"""How long an SQLite writer waits for another one to finish."""

SQLITE_POOL_SIZE = 48
"""SQLite connections kept open: one for each request thread (40 by default) and the
writers, so that no request pays for opening a connection and running its PRAGMAs."""

SQLITE_AUTOCHECKPOINT_PAGES = 20_000
"""WAL pages (80 MB) after which a commit checkpoints by itself, should the scheduled
checkpoints fall behind."""

CHECKPOINT_INTERVAL_S = 1.0
"""Seconds between two scheduled SQLite checkpoints (see :meth:`Database.checkpoint`)."""

SERVER_POOL_SIZE = 20
"""Connections to a database server kept open per process..."""
SERVER_POOL_OVERFLOW = 20
"""...and opened beyond them under load (closed again when returned): 40 per process, so
two API processes stay within PostgreSQL's default 100 connections."""

READ_ONLY_OPTION = "registry_read_only"
"""Execution option of the engine behind :meth:`Database.read_session`."""

PRIVATE_FILE_MODE = 0o600
"""Mode of the SQLite database file (and so of its ``-wal`` and ``-shm`` files, which SQLite
creates with the database file's permissions): it holds personal data."""
PRIVATE_DIR_MODE = 0o700
"""Mode of a data directory the registry creates."""
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")
"""Files SQLite keeps beside the database file."""


def create_private_sqlite_file(path: Path) -> None:
    """Make sure the SQLite database file at ``path`` exists with mode 0600 before SQLite
    opens it (SQLite would create it, and its -wal and -shm files, with the process's umask,
    usually world-readable). A database file or side file already there is set to 0600."""
    path.parent.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_CREAT | os.O_RDWR, PRIVATE_FILE_MODE)
    try:
        os.fchmod(descriptor, PRIVATE_FILE_MODE)
    finally:
        os.close(descriptor)
    for suffix in SQLITE_SIDE_FILES:
        side = path.with_name(path.name + suffix)
        if side.exists():
            side.chmod(PRIVATE_FILE_MODE)


class TurnTakingConnection(sqlite3.Connection):
    """An SQLite connection that gives its write turn back as soon as its transaction ends:
    after the COMMIT (not before it, as SQLAlchemy's commit event would: the next writer
    would then wait in the busy handler for this one's WAL sync), the ROLLBACK, or the
    close."""

    write_turn: WriteTurn | None = None
    holds_turn = False

    def take_turn(self) -> None:
        """Wait for the turn of :attr:`write_turn`; hold it until the transaction ends."""
        if self.write_turn is None or self.holds_turn:
            return
        self.write_turn.take()
        self.holds_turn = True

    def give_back_turn(self) -> None:
        """Give the turn back if this connection holds it (idempotent)."""
        if self.holds_turn and self.write_turn is not None:
            self.holds_turn = False
            self.write_turn.give_back()

    def commit(self) -> None:
        """Commit, then give the turn back (kept if the COMMIT failed and the transaction
        is still open: its rollback gives it back)."""
        try:
            super().commit()
        finally:
            if not self.in_transaction:
                self.give_back_turn()

    def rollback(self) -> None:
        """Roll back, then give the turn back."""
        try:
            super().rollback()
        finally:
            self.give_back_turn()

    def close(self) -> None:
        """Close (SQLite rolls back what is open), then give the turn back."""
        try:
            super().close()
        finally:
            self.give_back_turn()


def create_registry_engine(settings: RegistrySettings) -> Engine:
    """An engine for ``settings.effective_database_url``. SQLite gets a WAL journal synced at
    every commit (``synchronous=FULL``: a committed record survives a power cut, not only a
    crash of the process), foreign keys, and ``BEGIN IMMEDIATE`` transactions, each taken
    on a :class:`registry.write_turn.WriteTurn`, so that concurrent writers (the request
    writers, the batcher, the anchorer, other processes' writers) queue in turn instead of
    racing in SQLite's busy handler (whose timeout stays, as the backstop). Read sessions
    take no turn."""
    url = settings.effective_database_url
    if not url.startswith("sqlite"):
        return create_engine(
            url, pool_pre_ping=True, pool_size=SERVER_POOL_SIZE, max_overflow=SERVER_POOL_OVERFLOW
        )
    database = make_url(url).database
    database_file = Path(database) if database and database != ":memory:" else None
    if database_file is not None:
        create_private_sqlite_file(database_file)
    turn = WriteTurn(
        None if database_file is None else write_turn_path(database_file),
        SQLITE_BUSY_TIMEOUT_MS / 1000,
    )
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "factory": TurnTakingConnection},
        pool_size=SQLITE_POOL_SIZE,
        max_overflow=0,
    )

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite would open transactions itself; BEGIN is emitted below instead.
        dbapi_connection.isolation_level = None
        dbapi_connection.write_turn = turn
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        # Checkpoints run on a schedule of their own (Database.checkpoint), not inside the
        # commit that happens to cross 1,000 pages of WAL: that commit — a request's — would
        # wait for the database file's fsync. This is only the backstop.
        cursor.execute(f"PRAGMA wal_autocheckpoint={SQLITE_AUTOCHECKPOINT_PAGES}")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        # A reader needs no write lock: in WAL mode it sees the last commit and neither
        # waits for the writer nor holds it up.
        if connection.get_execution_options().get(READ_ONLY_OPTION, False):
            connection.exec_driver_sql("BEGIN")
            return
        dbapi_connection = connection.connection.driver_connection
        dbapi_connection.take_turn()
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            dbapi_connection.give_back_turn()
            raise

    return engine


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (``alembic upgrade head``)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


class Database:
    """An engine and its session factory."""

    def __init__(self, engine: Engine) -> None:
        """Wrap ``engine``; see :meth:`open`."""
        self.engine = engine
        self.sessions = sessionmaker(engine, expire_on_commit=False)
        self.read_sessions = sessionmaker(
            engine.execution_options(**{READ_ONLY_OPTION: True}), expire_on_commit=False
        )

    @classmethod
    def open(cls, settings: RegistrySettings, *, run_migrations: bool = True) -> Database:
        """Create the engine for ``settings`` and (by default) migrate the schema."""
        engine = create_registry_engine(settings)
        if run_migrations:
            migrate(engine)
        return cls(engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose transaction commits when the block ends without an exception
        and rolls back otherwise."""
        with self.sessions.begin() as session:
            yield session

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        """A session for reading only: on SQLite its transaction takes no write lock, so it
        never queues behind a writer. Do not write through it."""
        with self.read_sessions.begin() as session:
            yield session

    def read_connection(self) -> Connection:
        """A connection for reading only, to use as a context manager: its one read
        transaction, as :meth:`read_session`'s, with no ORM session around the statements
        (which costs about as much CPU as a short read itself)."""
        return self.engine.connect().execution_options(**{READ_ONLY_OPTION: True})

    @property
    def is_sqlite(self) -> bool:
        """Whether the database is an SQLite file."""
        return self.engine.url.get_backend_name() == "sqlite"

    def checkpoint(self) -> None:
        """Copy the WAL into the SQLite database file (``wal_checkpoint(PASSIVE)``: neither
        readers nor writers wait for it); nothing for other databases."""
        if not self.is_sqlite:
            return
        # On the driver's connection directly: a checkpoint cannot run inside the
        # transaction SQLAlchemy would begin (BEGIN IMMEDIATE, see create_registry_engine).
        connection = self.engine.raw_connection()
        try:
            cursor = connection.cursor()
            cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
            cursor.fetchall()
            cursor.close()
        finally:
            connection.close()

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()
