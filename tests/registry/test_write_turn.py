"""The writers of an SQLite registry database take turns (registry/write_turn.py, taken at
each write transaction's begin in registry/db.py): the threads of one process in the order
they came, the processes on a flock()ed file beside the database that a dead holder's kernel
lets go; reads take no turn, and a nested write transaction of the same thread does not wait
for itself."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from registry.db import Database, create_registry_engine
from registry.settings import RegistrySettings
from registry.write_turn import WriteTurn, WriteTurnTimeout, write_turn_path

pytestmark = pytest.mark.no_database

WAIT_S = 30.0
"""Longest a test waits for a thread or a process that should finish promptly."""

HOLDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from sqlalchemy import text
    from registry.db import Database
    from registry.settings import RegistrySettings
    from registry.write_turn import WriteTurn, write_turn_path

    data_dir, how = Path(sys.argv[1]), sys.argv[2]
    if how == "turn":
        turn = WriteTurn(write_turn_path(data_dir / "registry.db"), 30.0)
        turn.take()
        print("holding", flush=True)
        sys.stdin.readline()
        turn.give_back()
    else:
        db = Database.open(RegistrySettings(data_dir=data_dir), run_migrations=False)
        with db.session() as session:
            session.execute(text("INSERT INTO marks (who) VALUES ('holder')"))
            print("holding", flush=True)
            sys.stdin.readline()
    print("released", flush=True)
    """
)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    """An SQLite registry database with one table of marks."""
    database = Database(create_registry_engine(RegistrySettings(data_dir=tmp_path)))
    with database.session() as session:
        session.execute(text("CREATE TABLE marks (id INTEGER PRIMARY KEY, who TEXT)"))
    yield database
    database.close()


def engine_turn(engine: Engine) -> WriteTurn:
    """The turn the connections of ``engine`` take."""
    with engine.connect() as connection:
        turn = connection.connection.driver_connection.write_turn  # type: ignore[union-attr]
    assert isinstance(turn, WriteTurn)
    return turn


def wait_until(condition: object, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.005)


def test_waiters_take_the_turn_in_the_order_they_came(tmp_path: Path) -> None:
    turn = WriteTurn(tmp_path / "turn.lock", WAIT_S)
    order: list[int] = []
    turn.take()

    def write(number: int) -> None:
        turn.take()
        order.append(number)
        turn.give_back()

    threads = []
    for number in range(8):
        thread = threading.Thread(target=write, args=(number,))
        thread.start()
        threads.append(thread)
        wait_until(lambda expected=number + 1: turn.waiting == expected, "a writer never queued")
    turn.give_back()
    for thread in threads:
        thread.join(WAIT_S)
    assert order == list(range(8))


def test_write_transactions_of_threads_follow_their_arrival(db: Database) -> None:
    turn = engine_turn(db.engine)
    release = threading.Event()

    def hold() -> None:
        with db.session() as session:
            session.execute(text("INSERT INTO marks (who) VALUES ('first')"))
            release.wait(WAIT_S)

    def write(who: str) -> None:
        with db.session() as session:
            session.execute(text("INSERT INTO marks (who) VALUES (:who)"), {"who": who})

    holder = threading.Thread(target=hold)
    holder.start()
    wait_until(lambda: turn.held, "the first writer never took the turn")
    writers = []
    for number in range(5):
        writer = threading.Thread(target=write, args=(f"w{number}",))
        writer.start()
        writers.append(writer)
        wait_until(lambda expected=number + 1: turn.waiting == expected, "a writer never queued")
    release.set()
    for thread in [holder, *writers]:
        thread.join(WAIT_S)
    with db.read_session() as session:
        marks = list(session.scalars(text("SELECT who FROM marks ORDER BY id")))
    assert marks == ["first", "w0", "w1", "w2", "w3", "w4"]


def test_reads_take_no_turn(db: Database) -> None:
    turn = engine_turn(db.engine)
    with db.session() as session:
        session.execute(text("INSERT INTO marks (who) VALUES ('outer')"))
        read: list[int] = []
        reader = threading.Thread(target=lambda: read.append(read_count(db)))
        reader.start()
        reader.join(WAIT_S)
        assert read == [0], "a read waited for the writer's turn"
        assert turn.waiting == 0
    assert not turn.held
    assert read_count(db) == 1


def test_a_thread_holding_the_turn_does_not_wait_for_itself(tmp_path: Path) -> None:
    """A nested write transaction (or another coroutine of the same event loop) gets past
    the turn; SQLite's own lock then behaves as it did before there were turns."""
    turn = WriteTurn(tmp_path / "turn.lock", WAIT_S)
    turn.take()
    turn.take()
    turn.give_back()
    assert turn.held
    others: list[str] = []
    other = threading.Thread(target=lambda: (turn.take(), others.append("in"), turn.give_back()))
    other.start()
    wait_until(lambda: turn.waiting == 1, "the other thread never queued")
    assert others == []
    turn.give_back()
    other.join(WAIT_S)
    assert others == ["in"] and not turn.held


def read_count(db: Database) -> int:
    with db.read_session() as session:
        return int(session.execute(text("SELECT count(*) FROM marks")).scalar_one())


def test_the_turn_is_given_back_on_rollback_and_close(db: Database) -> None:
    turn = engine_turn(db.engine)
    with pytest.raises(RuntimeError), db.session() as session:
        session.execute(text("INSERT INTO marks (who) VALUES ('rolled back')"))
        raise RuntimeError("roll back")
    assert not turn.held
    connection = db.engine.connect()
    transaction = connection.begin()
    connection.execute(text("INSERT INTO marks (who) VALUES ('closed')"))
    assert turn.held
    connection.invalidate()  # the driver connection is closed, not returned
    del transaction
    assert not turn.held
    with db.session() as session:
        session.execute(text("INSERT INTO marks (who) VALUES ('after')"))
    assert read_count(db) == 1


def test_a_waiter_gives_up_after_the_timeout(tmp_path: Path) -> None:
    turn = WriteTurn(None, 0.05)
    turn.take()
    failed: list[BaseException] = []

    def write() -> None:
        try:
            turn.take()
        except WriteTurnTimeout as error:
            failed.append(error)

    thread = threading.Thread(target=write)
    thread.start()
    thread.join(WAIT_S)
    turn.give_back()
    assert len(failed) == 1 and "database is locked" in str(failed[0])
    assert turn.waiting == 0
    turn.take()  # the queue is not left blocked
    turn.give_back()


def start_holder(data_dir: Path, how: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(data_dir), how],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "holding"
    return process


def test_another_process_holding_the_turn_is_waited_for_then_handed_over(
    db: Database, tmp_path: Path
) -> None:
    """The turn alone (no SQLite lock) held by another process holds up this one's writer,
    which goes on as soon as it is given back."""
    assert write_turn_path(tmp_path / "registry.db").exists()
    holder = start_holder(tmp_path, "turn")
    written = threading.Event()

    def write() -> None:
        with db.session() as session:
            session.execute(text("INSERT INTO marks (who) VALUES ('here')"))
        written.set()

    writer = threading.Thread(target=write)
    try:
        writer.start()
        assert not written.wait(0.5), "wrote while another process held the turn"
        assert holder.stdin is not None and holder.stdout is not None
        holder.stdin.write("go\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "released"
        writer.join(WAIT_S)
        assert written.is_set()
    finally:
        holder.kill()
        holder.wait(WAIT_S)


def test_a_writer_gives_up_when_another_process_holds_the_turn_past_the_timeout(
    tmp_path: Path,
) -> None:
    """Another process's transaction may last minutes (a large import is one transaction):
    this process's writer gives up after the busy timeout, as SQLite's busy handler would,
    instead of hanging with its request, and the queue behind it goes on."""
    path = write_turn_path(tmp_path / "registry.db")
    holder = start_holder(tmp_path, "turn")
    turn = WriteTurn(path, 0.3)
    try:
        failed: list[BaseException] = []

        def write() -> None:
            try:
                turn.take()
            except WriteTurnTimeout as error:
                failed.append(error)

        writer = threading.Thread(target=write)
        writer.start()
        writer.join(WAIT_S)
        assert not writer.is_alive(), "the writer still waits for the other process"
        assert len(failed) == 1 and "database is locked" in str(failed[0])
        assert not turn.held and turn.waiting == 0
        assert holder.stdin is not None and holder.stdout is not None
        holder.stdin.write("go\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "released"
        turn.take()  # handed over once the other process gives it back
        assert turn.held
        turn.give_back()
    finally:
        holder.kill()
        holder.wait(WAIT_S)


def test_a_sigkilled_holder_does_not_hold_up_the_other_process(
    db: Database, tmp_path: Path
) -> None:
    """A process killed inside its write transaction: the kernel lets go of its turn and
    SQLite of its lock, its insert is not committed, and this process's writer goes on."""
    holder = start_holder(tmp_path, "session")
    written = threading.Event()

    def write() -> None:
        with db.session() as session:
            session.execute(text("INSERT INTO marks (who) VALUES ('here')"))
        written.set()

    writer = threading.Thread(target=write)
    writer.start()
    assert not written.wait(0.3), "wrote while another process held the turn"
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(WAIT_S)
    writer.join(WAIT_S)
    assert written.is_set()
    with db.read_session() as session:
        assert list(session.scalars(text("SELECT who FROM marks"))) == ["here"]
