"""Child processes for the SIGKILL tests, forked from one process that imported their modules
once.

A test that starts and kills the same program many times paid the interpreter start and the
imports (most of the CPU of a short run) each time. :class:`ForkServer` imports them once;
each child is a fork of it that then runs the program as ``python -m <module>`` or
``python <script>`` would (``__main__``, ``sys.argv``), so everything the program opens (its
store, its database, its sockets) is opened after the fork, as in a fresh process. The
children are SIGKILLed like any process; the server reaps them and reports how they ended.
The tests that use this file live in different folders; the root ``conftest.py`` puts its
folder on the import path.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

SERVER = """
import importlib, json, os, runpy, sys, traceback
for name in sys.argv[1:]:
    importlib.import_module(name)
print("loaded 0", flush=True)
for line in sys.stdin:
    request = json.loads(line)
    if request["command"] == "start":
        if os.fork() == 0:
            try:
                print(f"pid {os.getpid()}", flush=True)
                if request["new_session"]:
                    os.setsid()
                if request["output"] is not None:
                    output = os.open(request["output"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
                    os.dup2(output, 1)
                    os.dup2(output, 2)
                    os.close(output)
                sys.argv = [request["target"], *request["args"]]
                if request["kind"] == "module":
                    runpy.run_module(request["target"], run_name="__main__", alter_sys=True)
                else:
                    runpy.run_path(request["target"], run_name="__main__")
                code = 0
            except SystemExit as exit:
                code = exit.code if isinstance(exit.code, int) else (exit.code is not None)
            except BaseException:
                print("failed " + repr(traceback.format_exc()), flush=True)
                code = 1
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    else:
        command, pid = request["command"], request["pid"]
        done, status = os.waitpid(pid, os.WNOHANG if command == "poll" else 0)
        print(f"status {os.waitstatus_to_exitcode(status) if done else 'running'}", flush=True)
"""
"""The server: imports the modules named in its arguments, then answers one JSON request
per line. ``start`` forks a child, which first prints ``pid <pid>`` on the server's output
and then runs its program, its output on the same pipe or appended to a file; ``poll`` and
``reap`` answer ``status <exit code>`` (``running`` if not yet exited; ``reap`` waits)."""


class ForkServer:
    """The running server, in ``environment`` (which its children inherit)."""

    def __init__(self, preload: list[str], environment: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("ab") as errors:
            self.process = subprocess.Popen(
                [sys.executable, "-c", SERVER, *preload],
                env=environment,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=errors,
                text=True,
            )
        self.expect("loaded")

    def _send(self, **request: object) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()

    def expect(self, word: str) -> str:
        """The next line of output, which must be ``<word> <value>``; return the value. On
        anything else the server is ended and the test fails with the line and the log."""
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith(word + " "):
            self.close()
            raise AssertionError(f"printed {line!r}, expected {word!r}; log:\n{self.log_text()}")
        return line.split(maxsplit=1)[1].strip()

    def log_text(self) -> str:
        """What the server wrote to its log (import errors and the like)."""
        return self.log.read_text(errors="replace")

    def start(
        self,
        kind: str,
        target: str,
        args: list[str],
        *,
        output: Path | None = None,
        new_session: bool = False,
    ) -> Child:
        """Fork a child running ``python -m target args`` (``kind="module"``) or ``python
        target args`` (``kind="path"``), its output appended to ``output`` or, if None, on
        this server's output (read it with :meth:`expect`); in a new session (its own
        process group) if asked."""
        self._send(
            command="start",
            kind=kind,
            target=target,
            args=args,
            output=None if output is None else str(output),
            new_session=new_session,
        )
        return Child(self, int(self.expect("pid")))

    def status(self, pid: int, *, wait: bool) -> int | None:
        """The exit code of child ``pid`` (negative: killed by that signal), reaping it; None
        if it is still running and ``wait`` is false. Lines the child printed and nobody read
        are skipped."""
        self._send(command="reap" if wait else "poll", pid=pid)
        assert self.process.stdout is not None
        while not (line := self.process.stdout.readline()).startswith("status "):
            assert line, f"the fork server died; log:\n{self.log_text()}"
        answer = line.split()[1]
        return None if answer == "running" else int(answer)

    def close(self) -> None:
        """End the server and reap it (children still running are not its concern)."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.communicate()


class Child:
    """One forked child, with the parts of ``subprocess.Popen`` the tests use."""

    def __init__(self, server: ForkServer, pid: int) -> None:
        self.server = server
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        """The exit code if the child has exited (it is then reaped), else None."""
        if self.returncode is None:
            self.returncode = self.server.status(self.pid, wait=False)
        return self.returncode

    def kill(self) -> None:
        """SIGKILL the child, unless it has been reaped already."""
        if self.returncode is None:
            os.kill(self.pid, signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the child to exit and reap it; return its exit code. ``timeout`` is
        accepted for ``Popen``'s signature: callers kill the child first."""
        if self.returncode is None:
            self.returncode = self.server.status(self.pid, wait=True)
        assert self.returncode is not None
        return self.returncode
