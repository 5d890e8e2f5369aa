"""``scripts/dev.sh`` installs into .venv on a fresh machine and again only when
pyproject.toml changed; otherwise it goes straight to ``lianxin dev``.

The script runs for real (bash) in a copy of the repository's top level whose ``python`` and
``lianxin`` are stand-ins that log how they were called: pip is never run for real here,
and the project's own .venv is never touched."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

REPOSITORY = Path(__file__).resolve().parents[2]
SCRIPT_TIMEOUT_S = 60

VENV_PYTHON = """#!/usr/bin/env bash
# The venv's python: pip calls are logged; anything else runs on the real interpreter.
if [ "$1" = "-m" ] && [ "$2" = "pip" ]; then echo "pip ${*:3}" >>"$CALL_LOG"; exit 0; fi
exec "$REAL_PYTHON" "$@"
"""
VENV_LIANXIN = """#!/usr/bin/env bash
echo "lianxin $*" >>"$CALL_LOG"
"""
SYSTEM_PYTHON = """#!/usr/bin/env bash
# The machine's python: only `-m venv .venv` is expected; it makes a venv of stand-ins.
[ "$1 $2 $3" = "-m venv .venv" ] || exit 9
echo "venv" >>"$CALL_LOG"
mkdir -p .venv/bin
cp "$STAND_INS/venv-python" .venv/bin/python
cp "$STAND_INS/venv-lianxin" .venv/bin/lianxin
"""


def write_executable(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    path.chmod(0o755)


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """The script and pyproject.toml, laid out as in the repository, with no .venv."""
    root = tmp_path / "checkout"
    (root / "scripts").mkdir(parents=True)
    shutil.copy2(REPOSITORY / "scripts" / "dev.sh", root / "scripts" / "dev.sh")
    shutil.copy2(REPOSITORY / "pyproject.toml", root / "pyproject.toml")
    stand_ins = tmp_path / "stand-ins"
    stand_ins.mkdir()
    write_executable(stand_ins / "python3", SYSTEM_PYTHON)
    write_executable(stand_ins / "venv-python", VENV_PYTHON)
    write_executable(stand_ins / "venv-lianxin", VENV_LIANXIN)
    return root


def run_dev_script(root: Path) -> list[str]:
    """Run ``scripts/dev.sh`` (from another directory, as a user may); the calls it made."""
    log = root.parent / "calls.log"
    log.unlink(missing_ok=True)
    env = dict(
        os.environ,
        PYTHON=str(root.parent / "stand-ins" / "python3"),
        STAND_INS=str(root.parent / "stand-ins"),
        REAL_PYTHON=sys.executable,
        CALL_LOG=str(log),
    )
    completed = subprocess.run(
        ["bash", str(root / "scripts" / "dev.sh")],
        cwd=root.parent,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=SCRIPT_TIMEOUT_S,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return log.read_text(encoding="utf-8").splitlines()


def test_installs_on_a_fresh_machine_and_then_only_when_pyproject_changes(checkout: Path) -> None:
    start = "lianxin dev --dir devchain"
    assert run_dev_script(checkout) == [
        "venv",
        "pip install --quiet --upgrade pip",
        "pip install --quiet -e .",
        start,
    ]
    assert run_dev_script(checkout) == [start]
    assert run_dev_script(checkout) == [start]

    pyproject = checkout / "pyproject.toml"
    pyproject.write_text(pyproject.read_text(encoding="utf-8") + "\n# changed\n", "utf-8")
    assert run_dev_script(checkout) == [
        "pip install --quiet --upgrade pip",
        "pip install --quiet -e .",
        start,
    ]
    assert run_dev_script(checkout) == [start]


def test_an_install_that_fails_is_tried_again(checkout: Path) -> None:
    run_dev_script(checkout)
    stamp = checkout / ".venv" / ".lianxin-installed"
    assert stamp.exists()
    # As if pip had failed half-way last time: no stamp is left.
    stamp.unlink()
    assert "pip install --quiet -e ." in run_dev_script(checkout)
