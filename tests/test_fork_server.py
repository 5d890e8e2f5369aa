"""The fork server the SIGKILL tests start their processes from (``tests/support/fork_server.py``):
its children end with the exit code a fresh ``python`` would give them."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import fork_server as fs
import pytest


@pytest.fixture
def server(tmp_path: Path) -> Iterator[object]:
    started = fs.ForkServer(["json"], dict(os.environ), tmp_path / "server.log")
    try:
        yield started
    finally:
        started.close()


@pytest.mark.parametrize(
    ("program", "code"),
    [
        ("print('done')", 0),
        ("import sys; sys.exit(3)", 3),
        ("import sys; sys.exit()", 0),
        ("import sys; sys.exit('a message')", 1),
        ("raise RuntimeError('boom')", 1),
    ],
)
def test_a_child_ends_with_the_code_python_would_give(
    server: object, tmp_path: Path, program: str, code: int
) -> None:
    script = tmp_path / "program.py"
    script.write_text(program, encoding="utf-8")
    child = server.start("path", str(script), [], output=tmp_path / "out.log")  # type: ignore[attr-defined]
    assert child.wait() == code
    # The same program run by a fresh interpreter.
    assert os.system(f"{sys.executable} {script} >/dev/null 2>&1") >> 8 == code


def test_a_child_runs_a_module_with_its_arguments(server: object, tmp_path: Path) -> None:
    output = tmp_path / "out.log"
    child = server.start("module", "json.tool", ["--help"], output=output)  # type: ignore[attr-defined]
    assert child.wait() == 0
    assert "json.tool" in output.read_text(encoding="utf-8")


def test_a_killed_child_reports_the_signal(server: object, tmp_path: Path) -> None:
    script = tmp_path / "sleeper.py"
    script.write_text("import time\ntime.sleep(60)\n", encoding="utf-8")
    child = server.start("path", str(script), [], output=tmp_path / "out.log")  # type: ignore[attr-defined]
    time.sleep(0.2)
    assert child.poll() is None
    child.kill()
    assert child.wait() == -signal.SIGKILL
