"""The gateway's access writer takes the database's write turn (registry/write_turn.py)
around each group it commits: while another process holds the turn of an SQLite registry
database, a gated read is not logged, and it is answered as soon as the turn is given back.
On PostgreSQL no turn is taken (the server queues its writers) and the read is simply
answered."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from registry_harness import TrustChain, registry_settings
from sharing_harness import Scenario, module_database, scenario_on

from registry.write_turn import write_turn_path

WAIT_S = 30.0
"""Longest the test waits for the holder process or the read."""

HOLDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from registry.write_turn import WriteTurn

    turn = WriteTurn(Path(sys.argv[1]), 30.0)
    turn.take()
    print("holding", flush=True)
    sys.stdin.readline()
    turn.give_back()
    print("released", flush=True)
    """
)


@pytest.fixture(scope="module")
def scenario(
    trust_chain: TrustChain, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scenario]:
    with module_database() as database_url:
        settings = registry_settings(trust_chain, tmp_path_factory.mktemp("turns"), database_url)
        yield from scenario_on(settings)


def test_a_read_is_logged_in_turn_with_other_processes_writers(scenario: Scenario) -> None:
    granted = scenario.granted()
    assert scenario.read(granted["id"]).status_code == 200
    url = scenario.db.engine.url
    if url.get_backend_name() != "sqlite" or not url.database:
        assert scenario.read(granted["id"]).status_code == 200
        return
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(write_turn_path(Path(url.database)))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    answers: list[Any] = []
    answered = threading.Event()

    def read() -> None:
        answers.append(scenario.read(granted["id"]))
        answered.set()

    reader = threading.Thread(target=read)
    try:
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline().strip() == "holding"
        reader.start()
        assert not answered.wait(0.5), "a read was logged while another process held the turn"
        holder.stdin.write("go\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "released"
        reader.join(WAIT_S)
        assert answered.is_set()
        assert answers[0].status_code == 200, answers[0].text
    finally:
        holder.kill()
        holder.wait(WAIT_S)
