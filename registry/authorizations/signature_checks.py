"""The gated reads' signature checks, made in groups by threads of their own.

Each gated read's SM2 signature is checked once, before anything else about the read is
looked at (as :func:`registry.auth.verify_signed_request` always does). On the registry's
shared pool every check was one hop of its own: a thread woken for it, a future, and a
wake-up of the event loop to answer it, with forty threads taking the GIL in turn. Here
the checks are handed in turn to threads of their own (:data:`THREADS`, each a
:class:`registry.group_commit.GroupWriter`); each thread takes the checks waiting for it
at one moment together, checks them one after the other (OpenSSL's verification lets go of
the GIL, so the event loop and the access writer run meanwhile), and answers their
coroutines by one callback on the loop.

Several threads because a check takes the GIL back after each of its OpenSSL calls: while
the event loop and the access writer keep the GIL busy, one thread alone waits for it at
every call (a check then took about 1 ms instead of 0.3 ms, and with one or four threads a
loaded registry served fewer reads per second than with the pool, though with less CPU per
read); sixteen threads wait at the same time, and still take their checks in groups.

Each check is the same :func:`registry.auth.check_signature` with the same outcome: the
client, or its own AuthenticationFailed (``bad_signature``); an unexpected error reaches
only the request it belongs to."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from registry.auth import ClientDirectory, check_signature
from registry.errors import ServiceUnavailable
from registry.group_commit import GroupWriter
from registry.models import Client

MAX_GROUP = 64
"""Most checks one thread takes at once."""

THREADS = 16
"""Checking threads per registry process."""

_Check = tuple[ClientDirectory, str, bytes, bytes]
"""What one check is given: the directory, the client id, the signature, the message."""


def _check_each(checks: Sequence[_Check]) -> list[Client | Exception]:
    """Each check's client, or the error it raised (only its own request gets it)."""
    outcomes: list[Client | Exception] = []
    for clients, client_id, signature, message in checks:
        try:
            outcomes.append(check_signature(clients, client_id, signature, message))
        except Exception as error:  # handed to the one request it belongs to
            outcomes.append(error)
    return outcomes


class SignatureChecks:
    """The checker of one registry process (see the module docstring)."""

    def __init__(self, *, threads: int = THREADS, max_group: int = MAX_GROUP) -> None:
        """Check on ``threads`` threads, up to ``max_group`` signatures at once on each."""
        self._writers: list[GroupWriter[_Check, Client | Exception]] = [
            GroupWriter(
                _check_each,
                name=f"registry-signatures-{index}",
                max_group=max_group,
                stopped=lambda: ServiceUnavailable(
                    "the gateway is not accepting reads", code="stopping"
                ),
                # _check_each never raises for one check; a group that fails as a whole
                # (the thread stopping) gives each waiter this.
                failed=lambda _error: ServiceUnavailable("the request's signature was not checked"),
                retry_alone=(),
            )
            for index in range(threads)
        ]
        self._next = itertools.cycle(self._writers)

    def start(self) -> None:
        """Start the checking threads."""
        for writer in self._writers:
            writer.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Check what waits, then stop; later checks get 503."""
        for writer in self._writers:
            writer.stop(timeout)

    async def check(
        self, clients: ClientDirectory, client_id: str, signature: bytes, message: bytes
    ) -> Client:
        """:func:`registry.auth.check_signature` on the next checking thread in turn (a
        :data:`registry.auth.SignatureCheck`)."""
        outcome = await next(self._next).submit((clients, client_id, signature, message))
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


__all__ = ["MAX_GROUP", "THREADS", "SignatureChecks"]
