"""The access writers of two registry processes on one SQLite database take turns on a
lock file beside it: a process waits for the turn while another holds it, gets it as soon
as that one lets go (also when it dies holding it), and the writer of an SQLite file
database takes its turn around each group it commits."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from registry_harness import TrustChain, registry_settings
from sharing_harness import Scenario, module_database, scenario_on

from registry.authorizations.access import WRITE_TURN_SUFFIX
from registry.group_commit import WriteTurn

HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from registry.group_commit import WriteTurn

    lock, marker, hold = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
    with WriteTurn(lock)():
        print("holding", flush=True)
        time.sleep(hold)
        marker.write_text("released")
        if sys.argv[4] == "die":
            import os
            os._exit(0)
    """
)


@pytest.fixture(scope="module")
def scenario(
    trust_chain: TrustChain, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scenario]:
    with module_database() as database_url:
        settings = registry_settings(trust_chain, tmp_path_factory.mktemp("turns"), database_url)
        yield from scenario_on(settings)


def _holder(lock: Path, marker: Path, hold: float, end: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock), str(marker), str(hold), end],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "holding"
    return process


def test_a_turn_held_by_another_process_is_waited_for(tmp_path: Path) -> None:
    lock, marker = tmp_path / "db.sqlite-access-turn", tmp_path / "released"
    holder = _holder(lock, marker, 0.5, "release")
    turn = WriteTurn(lock)
    try:
        with turn():
            assert marker.exists(), "the turn was taken while another process held it"
    finally:
        turn.close()
        assert holder.wait(30) == 0


def test_a_turn_is_free_once_its_holder_died(tmp_path: Path) -> None:
    lock, marker = tmp_path / "db.sqlite-access-turn", tmp_path / "released"
    holder = _holder(lock, marker, 0.2, "die")
    turn = WriteTurn(lock)
    try:
        with turn():
            assert marker.exists()
        assert holder.wait(30) == 0
        with turn():
            pass
    finally:
        turn.close()


def test_threads_of_one_process_take_turns_too(tmp_path: Path) -> None:
    turn = WriteTurn(tmp_path / "db.sqlite-access-turn")
    inside: list[int] = []
    overlaps: list[int] = []

    def write() -> None:
        for _ in range(20):
            with turn():
                inside.append(1)
                if len(inside) > 1:
                    overlaps.append(len(inside))
                time.sleep(0.001)
                inside.pop()

    threads = [threading.Thread(target=write) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    turn.close()
    assert overlaps == []


def test_the_access_writer_takes_its_turn_around_each_group(scenario: Scenario) -> None:
    """A read waits while another process holds the turn, and is answered after."""
    url = scenario.db.engine.url
    if url.get_backend_name() != "sqlite" or not url.database:
        return  # a database server queues its writers itself: no turn is taken
    database = Path(url.database)
    lock = database.with_name(database.name + WRITE_TURN_SUFFIX)
    marker = database.with_name("turn-released")
    granted = scenario.granted()
    assert scenario.read(granted["id"]).status_code == 200
    holder = _holder(lock, marker, 0.5, "release")
    try:
        answer = scenario.read(granted["id"])
        assert answer.status_code == 200, answer.text
        assert marker.exists(), "the read was logged while another process held the turn"
    finally:
        assert holder.wait(30) == 0
        marker.unlink(missing_ok=True)
