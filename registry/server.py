"""Run the registry as a process: ``python -m registry`` (settings from the environment,
host and port from ``LIANXIN_REGISTRY_HOST`` / ``LIANXIN_REGISTRY_PORT``)."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import sys
from typing import Any

import uvicorn
from fastapi import FastAPI
from uvicorn.config import LOG_LEVELS
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from chain.crypto.backend import log_backend_choice
from chain.limits import cap_recursion_limit
from registry.app import create_app
from registry.settings import RegistrySettings

GC_THRESHOLDS = (20_000, 20, 20)
"""Collect the youngest generation every 20,000 net allocations instead of 700: a request
allocates a few thousand objects, and the default made the collector run several times
per request and, now and then, a full collection over every cached bundle mid-request."""


THREAD_SWITCH_INTERVAL_S = 0.0005
"""How long one thread may hold the GIL while another waits for it (CPython's default is
5 ms). A gated read's group is committed by the access writer thread, which lets go of the
GIL at every SQLite statement, its WAL sync and the registry's SM2 signature, about ten
times per group, and must take it back from the event loop each time: with the default,
each take waits up to 5 ms while the loop answers other requests, and a group of a few
reads took several times its own work (the same convoy the node's block producer had, see
``node.producer.THREAD_SWITCH_INTERVAL_S``). At 0.5 ms each wait is a tenth as long, for a
few more thread switches."""


WORKER_HEALTHCHECK_TIMEOUT_S = 60
"""How long uvicorn's supervisor waits for a worker process to answer its health check
(uvicorn's default is 5 s) before it kills and restarts it. A worker still importing on a
busy machine takes longer than 5 s, and was then killed over and over, never serving."""


COALESCED_WRITE_BYTES = 64 * 1024
"""Bytes held back to go with the next write of the same turn of the event loop stay below
this; a write that would reach it goes to the socket at once (with what was held), so a
large streamed answer meets the transport's flow control as before."""


class CoalescedWrites:
    """A connection's transport whose small writes made in one turn of the event loop reach
    the socket as one: uvicorn writes an answer's status line and headers, then its body, as
    two writes, each a system call (and on loopback the receiver's TCP work too); held back
    until the turn ends, they are one. The bytes and their order are the same; they leave
    when the turn ends instead of at once, and before the connection closes."""

    __slots__ = ("_loop", "_pending", "_pending_bytes", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        """Writes through ``transport``, held back until ``loop`` ends its turn."""
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] | None = None
        self._pending_bytes = 0

    def write(self, data: bytes) -> None:
        """Write ``data`` after what was written before it."""
        pending = self._pending
        size = self._pending_bytes + len(data)
        if size >= COALESCED_WRITE_BYTES:
            if pending is not None:
                pending.append(data)
                self.flush()
            else:
                self._transport.write(data)
            return
        if pending is None:
            self._pending = [data]
            self._loop.call_soon(self.flush)
        else:
            pending.append(data)
        self._pending_bytes = size

    def flush(self) -> None:
        """Hand what is held to the socket (nothing if the connection is closing)."""
        pending = self._pending
        if pending is None:
            return
        self._pending = None
        self._pending_bytes = 0
        if not self._transport.is_closing():
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:
        """Close the connection after what is held is written."""
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        """Close the writing side after what is held is written."""
        self.flush()
        self._transport.write_eof()

    def abort(self) -> None:
        """Close the connection at once; what is held is dropped, as the transport's own
        buffer is."""
        self._pending = None
        self._pending_bytes = 0
        self._transport.abort()

    def is_closing(self) -> bool:
        """Whether the connection is closing or closed."""
        return self._transport.is_closing()

    def get_write_buffer_size(self) -> int:
        """Bytes written but not yet sent, held back here or in the transport."""
        return self._pending_bytes + self._transport.get_write_buffer_size()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """The transport's information ``name`` (socket, peer name, SSL object)."""
        return self._transport.get_extra_info(name, default)

    def pause_reading(self) -> None:
        """Stop reading from the connection."""
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        """Read from the connection again."""
        self._transport.resume_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        """Hand the connection to ``protocol`` (a protocol upgrade)."""
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        """The connection's protocol."""
        return self._transport.get_protocol()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools HTTP/1.1 protocol (what ``http="auto"`` picks when httptools is
    installed), writing through :class:`CoalescedWrites`: an answer's headers and body leave
    in one write."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Serve the connection through a transport that coalesces its writes."""
        coalesced: Any = CoalescedWrites(transport, self.loop)
        super().connection_made(coalesced)


def logs_access(log_level: str) -> bool:
    """Whether uvicorn at ``log_level`` would print its access log (lines at INFO). When it
    would not, the access log is switched off, not only silenced: silenced, uvicorn still
    formats each request's client address and path for a line that is then dropped."""
    return LOG_LEVELS.get(log_level.lower(), logging.INFO) <= logging.INFO


def tune_interpreter() -> None:
    """Set this server process's interpreter up for request traffic: objects alive at start
    (modules, the application) are moved out of the collector's sight and collections are
    rarer; threads waiting for the GIL get it within :data:`THREAD_SWITCH_INTERVAL_S`. The
    recursion limit is brought back to what py-evm needs, whatever an import set."""
    cap_recursion_limit()
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    sys.setswitchinterval(THREAD_SWITCH_INTERVAL_S)


def app_from_environment() -> FastAPI:
    """The application with settings from the environment: what each of several uvicorn
    worker processes builds for itself (``registry start --workers N``)."""
    app = create_app(RegistrySettings())
    tune_interpreter()
    return app


def serve(host: str, port: int, *, workers: int, log_level: str) -> None:
    """Serve the registry with uvicorn until interrupted: in this process, or in
    ``workers`` processes sharing the port (settings from the environment)."""
    log_backend_choice(logging.getLogger("lianxin.registry"))
    if workers == 1:
        app = create_app(RegistrySettings())
        tune_interpreter()
        uvicorn.run(
            app,
            host=host,
            port=port,
            log_level=log_level,
            access_log=logs_access(log_level),
            http=CoalescingHttpProtocol,
        )
    else:
        uvicorn.run(
            "registry.server:app_from_environment",
            factory=True,
            workers=workers,
            timeout_worker_healthcheck=WORKER_HEALTHCHECK_TIMEOUT_S,
            host=host,
            port=port,
            log_level=log_level,
            access_log=logs_access(log_level),
            http=CoalescingHttpProtocol,
        )


def main() -> None:
    """Serve the registry with uvicorn until interrupted."""
    logging.basicConfig(level=os.environ.get("LIANXIN_REGISTRY_LOG_LEVEL", "INFO"))
    host = os.environ.get("LIANXIN_REGISTRY_HOST", "127.0.0.1")
    port = int(os.environ.get("LIANXIN_REGISTRY_PORT", "8600"))
    serve(host, port, workers=RegistrySettings().workers, log_level="warning")


if __name__ == "__main__":
    main()
