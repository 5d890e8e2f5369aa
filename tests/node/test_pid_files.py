"""The background node's pid file and the network's folders, as ``lianxin node`` and
``lianxin net`` read them."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import typer

from node.chain_dir import ChainDir
from node.cli_common import node_folder, node_folders
from node.pid_files import pid_file, running_pid


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()[0]


def test_a_live_process_is_running(tmp_path: Path) -> None:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        pid_file(tmp_path).write_text(f"{process.pid}\n", encoding="utf-8")
        assert running_pid(pid_file(tmp_path)) == process.pid
    finally:
        process.kill()
        process.wait()
    # Reaped: the pid answers nothing any more.
    assert running_pid(pid_file(tmp_path)) is None


def test_an_exited_unreaped_process_is_not_running(tmp_path: Path) -> None:
    """A node that exited while its parent has not reaped it still answers signal 0; it must
    count as stopped (``node stop`` would otherwise wait 10 s and fail)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 30
        while _state(process.pid) != "Z":
            assert time.monotonic() < deadline, "the child did not exit"
            time.sleep(0.01)
        pid_file(tmp_path).write_text(f"{process.pid}\n", encoding="utf-8")
        assert running_pid(pid_file(tmp_path)) is None
    finally:
        process.wait()


@pytest.mark.parametrize("text", ["", "not a pid", "12x", "-"])
def test_a_pid_file_without_a_pid_is_not_running(tmp_path: Path, text: str) -> None:
    pid_file(tmp_path).write_text(text, encoding="utf-8")
    assert running_pid(pid_file(tmp_path)) is None


def test_no_pid_file_is_not_running(tmp_path: Path) -> None:
    assert running_pid(pid_file(tmp_path)) is None


def test_node_folders_in_index_order(tmp_path: Path) -> None:
    chain = ChainDir(tmp_path)
    for index in range(3):
        chain.node(index).mkdir(parents=True)
        (chain.node(index) / "node.toml").write_text("", encoding="utf-8")
    assert node_folders(tmp_path) == [chain.node(0), chain.node(1), chain.node(2)]
    assert node_folder(tmp_path, 2) == chain.node(2)
    with pytest.raises(typer.Exit):
        node_folder(tmp_path, 3)
    with pytest.raises(typer.Exit):
        node_folder(tmp_path, -1)


def test_no_node_folders_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(typer.Exit):
        node_folders(tmp_path)
