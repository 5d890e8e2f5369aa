"""The reading process: every reader but text's (:mod:`archives.file_readers`) runs in a
child forked for one file from a reading process that each process using it starts once (a
fresh interpreter with pypdf and Pillow imported, never a fork of a caller that may run
threads), under :data:`READ_SECONDS` of wall-clock time and :data:`READ_ADDRESS_SPACE` of
memory; what ends it early is the file's answer (see :mod:`archives.usability`). The files
of one package are read within a :class:`ReadingBudget` as well (:data:`READ_BUDGET_SECONDS`):
what its end cuts short or leaves unread is not checked (:class:`BudgetSpent`)."""

from __future__ import annotations

import atexit
import json
import math
import os
import resource
import select
import signal
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import NoReturn

from PIL import Image

from archives.file_readers import MAX_REASON, OPENERS, NotUsable

READ_SECONDS = 60.0
"""Wall-clock seconds the reading of one file may take. The slowest sound files seen here
took a tenth of it: a PDF of :data:`MAX_PDF_PAGES` pages walked in 1.3-5 s, an image of
:data:`MAX_IMAGE_PIXELS` pixels decoded in 3-13 s (a loaded two-core machine)."""

READ_ADDRESS_SPACE = 2 << 30
"""Address space (``RLIMIT_AS``) of the process reading one file, lowered to the limit it
inherits if that is lower. An image of :data:`MAX_IMAGE_PIXELS` pixels at 4 bytes decodes
in 0.8 GB, in 1.6 GB if it is a TIFF stored as one strip (libtiff's strip beside Pillow's
image); the interpreter itself takes some 50 MB."""

READ_BUDGET_SECONDS = 600.0
"""Wall-clock seconds the reading of one package's files may take in all (the default of
:meth:`ReadingBudget.start`). Each file may take :data:`READ_SECONDS`: without a bound for
the package, a thousand files that each take a little less would hold an ingest for some 16
hours. 600 s is some 45 of the slowest sound files seen here (13 s each) on one process."""

READ_START_SECONDS = 30.0
"""Seconds the reading process is given beyond :data:`READ_SECONDS` to answer (it imports
pypdf and Pillow when it starts) before it is taken for stuck, killed and replaced."""


_STOP_SECONDS = 1.0
"""Seconds the reading process is given to exit once told to, before it is killed."""


class BudgetSpent(Exception):
    """The package's reading budget ran out before the file was read, or while it was being
    read: the file is not checked, neither found to open nor found not to."""


@dataclass(frozen=True)
class ReadingBudget:
    """The wall-clock time left for reading the files of one package: a deadline on
    ``time.monotonic()``, which is ``CLOCK_MONOTONIC``, one clock for every process of the
    machine, so the worker processes of a pool read against the same deadline."""

    seconds: float
    """The budget."""
    deadline: float
    """When it runs out (``time.monotonic()``)."""

    @classmethod
    def start(cls, seconds: float | None = None) -> ReadingBudget:
        """A budget of ``seconds`` (:data:`READ_BUDGET_SECONDS` if None) from now."""
        seconds = READ_BUDGET_SECONDS if seconds is None else seconds
        return cls(seconds, time.monotonic() + seconds)

    def spent(self, what: str) -> BudgetSpent:
        """The exception saying ``what`` happened to a file because this budget was spent."""
        return BudgetSpent(f"{what}: the package's reading budget of {self.seconds:g} s was spent")

    def check(self) -> float:
        """The seconds left; raises BudgetSpent (the file is not read) if none are."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise self.spent("not read")
        return left


def _read_here(kind: str, path: Path, address_space: int) -> tuple[bool, str]:
    """Read ``path`` as ``kind`` in this process (a child forked to read it)."""
    # The pixel budget is checked from the header before decoding, naming the budget;
    # Pillow's own check (a warning, then an error at twice the limit) would come first.
    Image.MAX_IMAGE_PIXELS = None
    try:
        return True, OPENERS[kind](path)
    except NotUsable as exc:
        return False, str(exc)
    except MemoryError:
        return False, f"reading it needs more than {address_space >> 20} MiB of memory"
    except OSError as exc:
        return False, f"unreadable: {exc}"


def _read_and_exit(
    kind: str,
    path: str,
    seconds: float,
    address_space: int,
    answer: int,
    inherited: tuple[int, ...],
) -> NoReturn:
    """The forked child: limit this process, read the file, write the answer to ``answer``
    as JSON ``[opened, text]``, and exit, whatever happens, without returning into the
    reading process's loop."""
    status = 1
    try:
        try:
            for descriptor in inherited:
                os.close(descriptor)
            _, hard = resource.getrlimit(resource.RLIMIT_AS)
            if hard != resource.RLIM_INFINITY:
                address_space = min(address_space, hard)
            resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
            # CPU time, should the reading process be gone and no longer watch the clock.
            cpu = math.ceil(seconds) + 1
            resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
            opened, text = _read_here(kind, Path(path), address_space)
            status = 0
        except BaseException as exc:
            # Not the file's answer but a fault of the reading itself: its traceback goes
            # to stderr, and the file does not count as opened.
            traceback.print_exc()
            opened, text = False, f"reading failed: {type(exc).__name__}: {exc}"
        data = json.dumps([opened, text[:MAX_REASON]]).encode()
        while data:
            data = data[os.write(answer, data) :]
    finally:
        try:
            sys.stderr.flush()
        finally:
            os._exit(status)


def _wait_answer(descriptor: int, seconds: float) -> bytes | None:
    """What the reading child wrote before it ended, or None if it has not ended within
    ``seconds``."""
    deadline = time.monotonic() + seconds
    poller = select.poll()
    poller.register(descriptor, select.POLLIN)
    chunks: list[bytes] = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not poller.poll(math.ceil(left * 1000)):
            return None
        chunk = os.read(descriptor, 65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _read_in_child(
    kind: str, path: str, seconds: float, address_space: int, inherited: tuple[int, ...]
) -> tuple[bool | None, str]:
    """Fork a child to read ``path``; its answer, or why there is none (``None`` for
    opened: it did not finish within ``seconds``)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        _read_and_exit(kind, path, seconds, address_space, write_end, inherited)
    os.close(write_end)
    try:
        answer = _wait_answer(read_end, seconds)
    finally:
        os.close(read_end)
    if answer is None:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    if answer is None:
        return None, f"reading did not finish within {seconds:g} s"
    try:
        opened, text = json.loads(answer)
        return bool(opened), str(text)
    except ValueError:
        pass  # no answer, or a part of one: the child's end says why
    if os.WIFSIGNALED(status):
        return False, f"its reader was killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return False, f"its reader ended with status {os.waitstatus_to_exitcode(status)}, no answer"


def _serve(inbox: int, outbox: int) -> None:
    """The reading process: answer each ``(kind, path, seconds, address_space)`` from the
    parent by reading the file in a child forked for it; exit when the parent closes."""
    # An interrupt at the parent's terminal is the parent's to act on.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    requests = Connection(inbox, writable=False)
    answers = Connection(outbox, readable=False)
    while True:
        try:
            kind, path, seconds, address_space = requests.recv()
        except EOFError:
            return
        answers.send(_read_in_child(kind, path, seconds, address_space, (inbox, outbox)))


_SERVE_COMMAND = (
    "import sys; from archives.reading_process import _serve; "
    "_serve(int(sys.argv[1]), int(sys.argv[2]))"
)
"""What the reading process runs."""


class _Reader:
    """This process's reading process and the two ends of its pipes."""

    def __init__(self) -> None:
        child_in, self_out = os.pipe()
        self_in, child_out = os.pipe()
        # The reading process imports this module from wherever this process did.
        environment = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _SERVE_COMMAND, str(child_in), str(child_out)],
                pass_fds=(child_in, child_out),
                stdin=subprocess.DEVNULL,
                env=environment,
            )
        except BaseException:
            os.close(self_in)
            os.close(self_out)
            raise
        finally:
            os.close(child_in)
            os.close(child_out)
        self.answers = Connection(self_in, writable=False)
        self.requests = Connection(self_out, readable=False)

    def send(self, request: tuple[str, str, float, int]) -> bool:
        """Pass ``request`` on; False if the reading process has gone."""
        try:
            self.requests.send(request)
        except OSError:
            return False
        return True

    def answer(self, seconds: float) -> tuple[bool | None, str]:
        """The answer to the request sent (opened: True, False, or None if the file's
        reading did not finish within its time); if none comes within ``seconds``, or the
        reading process ends first, why not, and it is stopped (:attr:`stopped`)."""
        try:
            if self.answers.poll(seconds):
                opened, text = self.answers.recv()
                return None if opened is None else bool(opened), str(text)
        except (EOFError, OSError):
            self.stop()
            return False, f"its reading process ended (status {self.process.returncode})"
        self.stop()
        return False, f"its reading process gave no answer within {seconds:g} s"

    @property
    def stopped(self) -> bool:
        """Whether this reading process is stopped (a new one is needed)."""
        return self.requests.closed

    def forget(self) -> None:
        """Close this process's ends of the pipes (in a forked child: the parent's reader
        stays the parent's)."""
        self.requests.close()
        self.answers.close()

    def stop(self) -> None:
        """Close the pipes (it exits when it reads their end) and wait for it; killed if it
        does not exit in time."""
        if self.stopped:
            return
        self.forget()
        try:
            self.process.wait(_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


_reader: _Reader | None = None
_reader_lock = threading.Lock()


def _forget_reader_after_fork() -> None:
    global _reader, _reader_lock
    _reader_lock = threading.Lock()
    if _reader is not None:
        _reader.forget()
        _reader = None


def _stop_reader() -> None:
    global _reader
    if _reader is not None:
        _reader.stop()
        _reader = None


os.register_at_fork(after_in_child=_forget_reader_after_fork)
atexit.register(_stop_reader)


def read_elsewhere(kind: str, path: Path, budget: ReadingBudget | None = None) -> str:
    """Read ``path`` as ``kind`` in a child of the reading process, started if need be (and
    started again if the one there has gone), within :data:`READ_SECONDS` or what is left
    of ``budget`` if that is less. One file at a time: threads of one process wait for
    each other. Raises NotUsable, or BudgetSpent if ``budget`` runs out first (before the
    reading, or during it: then the file is cut there, not past its own bound; a reading
    process started for the file first takes the time it needs to start, some 0.5 s)."""
    global _reader
    with _reader_lock:
        seconds = READ_SECONDS if budget is None else min(READ_SECONDS, budget.check())
        request = (kind, str(path.absolute()), seconds, READ_ADDRESS_SPACE)
        if _reader is None or _reader.stopped or not _reader.send(request):
            if _reader is not None:
                _reader.stop()
            _reader = _Reader()
            if not _reader.send(request):
                raise OSError("the reading process takes no request")
        opened, text = _reader.answer(seconds + READ_START_SECONDS)
    if opened is None and budget is not None and seconds < READ_SECONDS:
        raise budget.spent("not read to its end")
    if not opened:
        raise NotUsable(text)
    return text


__all__ = [
    "READ_ADDRESS_SPACE",
    "READ_BUDGET_SECONDS",
    "READ_SECONDS",
    "BudgetSpent",
    "ReadingBudget",
    "read_elsewhere",
]
