"""The README's walkthrough runs as written: its ``sh`` blocks (``lianxin`` commands) and its
``python`` blocks, in document order, against a real node process — in a working directory
where ``scripts/dev.sh`` has already made its dev chain, ``./devchain``, as a reader who
follows the README from the top has.

The only change made to the text is the port: the document's 8546 becomes a free one. The
Python blocks between two shell blocks run as one script, as a reader would paste them into
one interpreter session.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from e2e_harness import CLI_TIMEOUT_S, DevChain, free_port, run_cli

pytestmark = pytest.mark.e2e

README = Path(__file__).resolve().parents[2] / "README.md"
WALKTHROUGH_HEADING = "\n## Five-minute walkthrough\n"
DOCUMENT_PORT = "8546"
WALKTHROUGH_DIR = "walkthrough"
"""The chain directory the walkthrough makes (beside ``scripts/dev.sh``'s ``devchain``)."""
FENCED_BLOCK = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def readme_section(heading: str) -> str:
    """The README's section under ``heading`` (a level-2 heading line with its newlines):
    from it to the next level-2 heading."""
    readme = README.read_text(encoding="utf-8")
    start = readme.index(heading) + len(heading)
    end = readme.find("\n## ", start)
    return readme[start : end if end >= 0 else len(readme)]


def walkthrough_text() -> str:
    """The README's walkthrough section."""
    return readme_section(WALKTHROUGH_HEADING)


def walkthrough_steps(text: str) -> list[tuple[str, str]]:
    """The document's ``sh`` and ``python`` blocks in order as (language, code); adjacent
    python blocks are joined into one."""
    steps: list[tuple[str, str]] = []
    for match in FENCED_BLOCK.finditer(text):
        language, code = match.group(1), match.group(2)
        if language not in ("sh", "python"):
            continue
        if language == "python" and steps and steps[-1][0] == "python":
            steps[-1] = ("python", steps[-1][1] + "\n" + code)
        else:
            steps.append((language, code))
    return steps


def run_shell_block(code: str, cwd: Path) -> None:
    """Run each line of a shell block; every one must be a ``lianxin`` command that succeeds."""
    for line in code.splitlines():
        if not line.strip():
            continue
        program, *args = shlex.split(line)
        assert program == "lianxin", f"the walkthrough runs only lianxin commands: {line!r}"
        result = run_cli(*args, cwd=cwd)
        assert result.code == 0, (line, result)
        print(f"$ {line}\n{result.stdout}")


def run_python_block(code: str, cwd: Path) -> None:
    """Run ``code`` as one script in a fresh interpreter; it must exit 0."""
    completed = subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )
    print(completed.stdout)
    assert completed.returncode == 0, completed.stderr


def test_walkthrough_blocks_are_extracted_in_order() -> None:
    steps = walkthrough_steps(walkthrough_text())
    assert [language for language, _ in steps] == ["sh", "python", "sh"]
    assert "lianxin_web3" in steps[1][1] and "Sm2Account.from_keystore" in steps[1][1]


def test_walkthrough_runs_against_a_real_node(tmp_path: Path) -> None:
    port = str(free_port())
    text = walkthrough_text().replace(DOCUMENT_PORT, port)
    # What `scripts/dev.sh` (`lianxin dev --dir devchain`) leaves behind before step 1.
    made_by_dev = run_cli("init", "devchain", "--dev", "--rpc-port", str(free_port()), cwd=tmp_path)
    assert made_by_dev.code == 0, made_by_dev
    chain = DevChain(root=tmp_path / WALKTHROUGH_DIR, port=int(port), accounts={})
    try:
        for language, code in walkthrough_steps(text):
            if language == "sh":
                run_shell_block(code, tmp_path)
            else:
                run_python_block(code, tmp_path)
        assert chain.background_pid() is None, "the walkthrough leaves the node stopped"
    finally:
        chain.kill_leftovers()
