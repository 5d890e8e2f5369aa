"""The README's "The registry on the dev chain" runs as written, right after ``scripts/dev.sh``:
``lianxin dev --dir devchain`` runs (a real node and registry), and the section's ``sh`` and
``python`` blocks run in document order in its working directory, as the walkthrough test
runs the walkthrough. The only changes to the text are the ports: the document's 8545 and
8600 become free ones."""

from __future__ import annotations

from pathlib import Path

import pytest
from e2e_harness import free_port
from test_dev_command import interrupt, start_dev, wait_for_urls
from test_walkthrough import readme_section, run_python_block, run_shell_block, walkthrough_steps

pytestmark = pytest.mark.e2e

REGISTRY_HEADING = "\n## The registry on the dev chain\n"
DOCUMENT_RPC_PORT = "8545"
DOCUMENT_REGISTRY_PORT = "8600"


def test_the_section_has_a_command_then_python() -> None:
    steps = walkthrough_steps(readme_section(REGISTRY_HEADING))
    assert [language for language, _ in steps] == ["sh", "python"]
    python = steps[1][1]
    for step in ("notarize", "verify", "issue_license", "verify_url"):
        assert step in python


def test_the_registry_section_runs_against_lianxin_dev(tmp_path: Path) -> None:
    rpc_port, registry_port = free_port(), free_port()
    text = (
        readme_section(REGISTRY_HEADING)
        .replace(DOCUMENT_RPC_PORT, str(rpc_port))
        .replace(DOCUMENT_REGISTRY_PORT, str(registry_port))
    )
    log = tmp_path / "dev.log"
    process = start_dev(tmp_path / "devchain", rpc_port, registry_port, log)
    try:
        wait_for_urls(process, log, registry_port)
        for language, code in walkthrough_steps(text):
            if language == "sh":
                run_shell_block(code, tmp_path)
            else:
                run_python_block(code, tmp_path)
    finally:
        status = interrupt(process)
    assert status == 0, log.read_text()
