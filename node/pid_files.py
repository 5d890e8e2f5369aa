"""The pid file of a node running in the background (``node.pid`` in its folder), shared by
``lianxin node`` and ``lianxin net``."""

from __future__ import annotations

import os
from pathlib import Path

PID_FILE_NAME = "node.pid"


def pid_file(folder: Path) -> Path:
    """Where a background node of ``folder`` (a chain directory or a validator folder) keeps
    its pid."""
    return folder / PID_FILE_NAME


def running_pid(path: Path) -> int | None:
    """The pid written in ``path`` if that process is alive, else ``None``: no file, text that
    is not a pid, no such process, or a process that has exited and not yet been reaped (a
    zombie, which still answers signal 0 but will never serve again)."""
    try:
        pid = int(path.read_text(encoding="utf-8").strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    try:
        state = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError, UnicodeDecodeError):
        return pid
    return None if state == "Z" else pid


__all__ = ["PID_FILE_NAME", "pid_file", "running_pid"]
