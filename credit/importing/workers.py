"""Checking an import's chunks on a second core: a worker process (a fresh interpreter
running :func:`main`, not a fork of a process that may run threads) validates and prepares
chunks while the importing process stores the chunks before them, and the importing
process checks chunks itself whenever the worker has enough to do. Chunks come
back in file order whichever process checked them, so the report, the duplicates found and
what the sink is handed are those of a single process.

The worker is told the header mapping and ``prepare`` once, through a pipe of its own
(never its command line or environment: ``prepare`` may hold the registry's keys). It
reads chunks on a thread of its own, so that it always takes what it is sent while the
importing process is busy (no pipe fills both ways); the importing process never has more
than :data:`IN_FLIGHT` chunks at the worker, nor more than :data:`MAX_AHEAD` checked
chunks waiting for their turn, so memory stays bounded whatever the file's size.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import queue
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from multiprocessing.connection import Connection
from typing import Any

from credit.columns import HeaderMapping
from credit.errors import CreditError
from credit.importing.rows import CheckedChunk, Chunk, Prepare, check_chunk

__all__ = [
    "IN_FLIGHT",
    "MAX_AHEAD",
    "STOP_WAIT_S",
    "ImportWorkerError",
    "RowChecker",
]

IN_FLIGHT = 3
"""Chunks sent to the worker and not yet taken back: one it checks, two it finds waiting.
The importing process also stores every row, so it is the busier of the two: with two
chunks in flight it checked chunks itself that the worker could have taken (30,000 rows,
5 interleaved pairs under load: its CPU 6.99 s with two, 6.70 s with three; the worker's
4.52 s and 5.33 s)."""

MAX_AHEAD = 8
"""Checked chunks, and chunks at the worker, before the importing process waits for the
oldest (a chunk it checked itself waits behind the worker's earlier ones). With four, the
importing process of a 30,000-row import waited 0.8-1.0 s of its 6.1-6.4 s for the worker's
oldest chunk; with eight it checks on meanwhile and waits 0.6-0.7 s. Quiet, ten runs with
eight: 4,234-5,084 rows/s, median 4,803; nine with four: 4,220-4,577, median 4,444 (five of
them interleaved: eight was faster in four). A checked and prepared chunk is about 3 MB
pickled, so eight hold some 12-20 MB more than four."""

STOP_WAIT_S = 5.0
"""Seconds a worker is given to exit once its pipe is closed, before it is killed."""

_WORKER_COMMAND = "import sys; from credit.importing.workers import main; sys.exit(main(sys.argv))"
"""What the worker interpreter runs (``-c``: the module under its own name, so that what it
pickles is found by that name here)."""

_READY = "ready"
"""The worker's first message: its modules are imported and it has its setup."""


class ImportWorkerError(CreditError):
    """The worker process failed (it died, or could not be set up): nothing it checked is
    used, and the import fails."""


class _Failed:
    """A chunk whose check raised in the worker: the exception, or its text when it does
    not pickle."""

    def __init__(self, error: BaseException) -> None:
        self.error: BaseException | str
        try:
            pickle.dumps(error)
            self.error = error
        except Exception:
            self.error = f"{type(error).__name__}: {error}"


class _Worker:
    """The worker process and the two ends of its pipes."""

    def __init__(self, mapping: HeaderMapping, prepare: Prepare | None) -> None:
        # Pickled first: a ``prepare`` that does not pickle starts no process.
        setup = pickle.dumps((mapping, prepare), protocol=pickle.HIGHEST_PROTOCOL)
        child_in, self_out = os.pipe()
        self_in, child_out = os.pipe()
        # The worker imports what the importing process can (including the class of
        # ``prepare``), whatever put it on this process's path.
        environment = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _WORKER_COMMAND, str(child_in), str(child_out)],
                pass_fds=(child_in, child_out),
                stdin=subprocess.DEVNULL,
                env=environment,
            )
        except BaseException:
            for descriptor in (self_in, self_out):
                os.close(descriptor)
            raise
        finally:
            os.close(child_in)
            os.close(child_out)
        self.inbox = Connection(self_in, writable=False)
        self.outbox = Connection(self_out, readable=False)
        self.ready = False
        self.in_flight = 0
        self.outbox.send_bytes(setup)

    def is_ready(self) -> bool:
        """Whether the worker has started (answered its setup); never waits."""
        if not self.ready and self.inbox.poll():
            if self._receive() != _READY:
                raise ImportWorkerError("the import's worker process did not start")
            self.ready = True
        return self.ready

    def send(self, chunk: Chunk, prepare: bool) -> None:
        self.outbox.send((chunk, prepare))
        self.in_flight += 1

    def has_result(self) -> bool:
        return self.inbox.poll()

    def result(self) -> CheckedChunk:
        answer = self._receive()
        self.in_flight -= 1
        if isinstance(answer, _Failed):
            if isinstance(answer.error, BaseException):
                raise answer.error
            raise ImportWorkerError(f"the import's worker process failed: {answer.error}")
        if not isinstance(answer, CheckedChunk):
            raise ImportWorkerError("the import's worker process answered out of turn")
        return answer

    def _receive(self) -> Any:
        try:
            return self.inbox.recv()
        except (EOFError, OSError):
            raise ImportWorkerError(
                f"the import's worker process ended (exit status {self.process.poll()})"
            ) from None

    def stop(self) -> None:
        """Close its pipes (it exits when it reads the end) and wait for it; killed if it
        does not exit in time."""
        self.outbox.close()
        self.inbox.close()
        try:
            self.process.wait(STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class RowChecker:
    """Checks an import's chunks (:func:`credit.importing.rows.check_chunk`) in this
    process and, with ``workers=1``, in a worker process too; use as a context manager
    (the worker is stopped at its end)."""

    def __init__(self, mapping: HeaderMapping, prepare: Prepare | None, *, workers: int) -> None:
        """Start the worker process, if any (it imports its modules while this process
        checks the first chunks itself)."""
        if workers not in (0, 1):
            raise ValueError("an import has no worker process or one")
        self.mapping = mapping
        self.prepare = prepare
        self._worker = _Worker(mapping, prepare) if workers else None

    def __enter__(self) -> RowChecker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the worker process, if any (idempotent)."""
        if self._worker is not None:
            worker, self._worker = self._worker, None
            worker.stop()

    def _check_here(self, chunk: Chunk, prepare: bool) -> CheckedChunk:
        return check_chunk(self.mapping, chunk, self.prepare if prepare else None)

    def checked(
        self, chunks: Iterable[Chunk], prepare: Callable[[], bool]
    ) -> Iterator[CheckedChunk]:
        """Each chunk of ``chunks`` checked, in order; ``prepare()``, asked as a chunk is
        dispatched, says whether its valid rows are still worth preparing."""
        worker = self._worker
        if worker is None:
            for chunk in chunks:
                yield self._check_here(chunk, prepare())
            return
        # In file order: a chunk checked here, or None for the worker's oldest.
        ahead: deque[CheckedChunk | None] = deque()

        def oldest() -> CheckedChunk:
            checked = ahead.popleft()
            return worker.result() if checked is None else checked

        for chunk in chunks:
            if worker.is_ready() and worker.in_flight < IN_FLIGHT:
                worker.send(chunk, prepare())
                ahead.append(None)
            else:
                ahead.append(self._check_here(chunk, prepare()))
            while ahead and (ahead[0] is not None or worker.has_result()):
                yield oldest()
            while len(ahead) > MAX_AHEAD:
                yield oldest()
        while ahead:
            yield oldest()


def _serve(inbox: Connection, outbox: Connection) -> None:
    """The worker's loop: its setup, then a checked chunk for every chunk, until the
    importing process closes the pipe."""
    mapping, prepare = inbox.recv()
    outbox.send(_READY)
    chunks: queue.SimpleQueue[tuple[Chunk, bool] | None] = queue.SimpleQueue()

    def read() -> None:
        try:
            while True:
                chunks.put(inbox.recv())
        except (EOFError, OSError):
            chunks.put(None)

    threading.Thread(target=read, name="import-chunks", daemon=True).start()
    while (item := chunks.get()) is not None:
        chunk, wanted = item
        answer: CheckedChunk | _Failed
        try:
            answer = check_chunk(mapping, chunk, prepare if wanted else None)
        except Exception as error:
            answer = _Failed(error)
        outbox.send(answer)


def main(argv: list[str]) -> int:
    """Serve the importing process on the pipe descriptors ``argv[1]`` (in) and
    ``argv[2]`` (out); 0 when it closed them."""
    inbox = Connection(int(argv[1]), writable=False)
    outbox = Connection(int(argv[2]), readable=False)
    with contextlib.suppress(EOFError, BrokenPipeError):
        _serve(inbox, outbox)
    return 0
