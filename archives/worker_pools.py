"""Process pools whose workers leave when the process that made the pool is gone.

A worker of :class:`concurrent.futures.ProcessPoolExecutor` waits for its next task on a
pipe it holds both ends of: when the process that made the pool dies without shutting the
pool down (SIGKILL, the OOM killer, a service manager's stop timeout, ``os._exit``, a
signal's default action), the worker never reads an end of file and waits for ever, an
orphaned interpreter holding its memory (and keeping a ``spawn`` pool's resource tracker
alive with it). The archive makes its pools with :func:`process_pool`, whose workers first
run :func:`exit_with_parent`: a daemon thread that looks at the worker's parent process
every :data:`PARENT_POLL_S` seconds and ends the worker (``os._exit``) once that is no
longer the process it started under, whatever the worker is doing.

``PR_SET_PDEATHSIG`` would not do: it fires when the *thread* that started the worker ends,
and a pool starts its workers from whichever thread submits a task."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.context import BaseContext
from typing import Any

PARENT_POLL_S = 1.0
"""Seconds between a worker's looks at its parent: it ends within this of its parent."""

ORPHAN_EXIT_STATUS = 70
"""The exit status of a worker ended because its parent was gone."""


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_S)
    os._exit(ORPHAN_EXIT_STATUS)


def exit_with_parent(
    parent: int,
    initializer: Callable[..., object] | None = None,
    initargs: tuple[Any, ...] = (),
) -> None:
    """A pool worker's initializer: end this worker as soon as its parent is no longer
    ``parent``, the pid of the process that made the pool (a process whose parent dies is
    handed to init or a subreaper); then the pool's own ``initializer(*initargs)``, if any.
    Costs one thread per worker, asleep but once every :data:`PARENT_POLL_S` seconds."""
    if os.getppid() != parent:
        os._exit(ORPHAN_EXIT_STATUS)  # the pool's maker died while this worker started
    threading.Thread(target=_watch, args=(parent,), name="exit-with-parent", daemon=True).start()
    if initializer is not None:
        initializer(*initargs)


def process_pool(
    max_workers: int,
    context: BaseContext,
    *,
    initializer: Callable[..., object] | None = None,
    initargs: tuple[Any, ...] = (),
) -> ProcessPoolExecutor:
    """A pool of ``max_workers`` processes started by ``context``, each of which ends when
    this process is gone (:func:`exit_with_parent`), after running ``initializer(*initargs)``
    if given. ``context`` forks or spawns: raises ValueError for a ``forkserver``, whose
    workers are the server's children, not this process's (and hold the pipe whose end
    would end the server, so that neither would end)."""
    if context.get_start_method() not in ("fork", "spawn"):
        raise ValueError(f"a {context.get_start_method()} pool's workers are not this process's")
    return ProcessPoolExecutor(
        max_workers=max_workers,
        mp_context=context,
        initializer=exit_with_parent,
        initargs=(os.getpid(), initializer, initargs),
    )


def stop_pool(pool: ProcessPoolExecutor) -> None:
    """Shut ``pool`` down without waiting for its tasks: the tasks not started are
    cancelled, the workers killed (what they were doing is lost), the pool's own threads
    waited for."""
    # The workers are the pool's own (Python 3.14 kills them with kill_workers()).
    for worker in list((pool._processes or {}).values()):
        worker.kill()
    pool.shutdown(wait=True, cancel_futures=True)


__all__ = [
    "ORPHAN_EXIT_STATUS",
    "PARENT_POLL_S",
    "exit_with_parent",
    "process_pool",
    "stop_pool",
]
