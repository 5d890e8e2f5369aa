"""Looking at processes through /proc (Linux): a process's children, whether a process is
still running, waiting for processes to end; a FIFO that holds up whoever reads it."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

POLL_S = 0.05


@dataclass(frozen=True)
class Proc:
    """One process, told apart from a later one given the same pid by its start time."""

    pid: int
    started: int

    @classmethod
    def of(cls, pid: int) -> Proc | None:
        """The process ``pid`` is now, None if there is none."""
        stat = _stat(pid)
        return None if stat is None else cls(pid, int(stat[19]))

    @property
    def running(self) -> bool:
        """Whether it has not ended (a zombie has, waiting for its parent to reap it)."""
        stat = _stat(self.pid)
        return stat is not None and int(stat[19]) == self.started and stat[0] not in "ZX"

    @property
    def command(self) -> str:
        """Its command line, "" once it has ended."""
        with contextlib.suppress(OSError):
            return Path(f"/proc/{self.pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        return ""


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command (state first), None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def children(pid: int) -> list[Proc]:
    """The processes whose parent ``pid`` is (any of its threads started them)."""
    found: list[Proc] = []
    with contextlib.suppress(OSError):
        for thread in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):
                text = Path(f"/proc/{pid}/task/{thread}/children").read_text()
                found.extend(p for c in text.split() if (p := Proc.of(int(c))) is not None)
    return found


def still_running(processes: Iterable[Proc], seconds: float) -> list[Proc]:
    """Those of ``processes`` still running after waiting ``seconds`` for them all to end."""
    deadline = time.monotonic() + seconds
    while True:
        left = [p for p in processes if p.running]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(POLL_S)


@contextlib.contextmanager
def fifo_held_open(path: Path, seconds: float, alive: Iterable[Proc] = ()) -> Iterator[None]:
    """Hold the FIFO at ``path`` open for writing, writing nothing: who reads it waits (no
    data, no end of file) until this ends. Waits up to ``seconds`` for a reader to open it,
    which shows that the task reading it runs (``alive``: processes whose end means no
    reader will come)."""
    deadline = time.monotonic() + seconds
    writer = -1
    while writer < 0:
        try:
            writer = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENXIO:
                raise
            ended = [p for p in alive if not p.running]
            assert not ended, f"{ended} ended before reading {path}"
            assert time.monotonic() < deadline, f"nothing read {path} within {seconds} s"
            time.sleep(POLL_S)
    try:
        yield
    finally:
        os.close(writer)


def kill_sessions(started: Iterable[subprocess.Popen[Any]]) -> None:
    """SIGKILL each of ``started`` (each the leader of a session of its own) with every
    process of its session, and reap it."""
    for process in started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
