"""The gated reads' signature checks, made in groups by one thread of their own.

Each gated read's SM2 signature is checked once, before anything else about the read is
looked at (as :func:`registry.auth.verify_signed_request` always does). On the registry's
shared pool every check was one hop of its own: a thread woken for it, a future, and a
wake-up of the event loop to answer it, with forty threads taking the GIL in turn. Here
the checks waiting at one moment are taken together by ONE thread
(:class:`registry.group_commit.GroupWriter`), checked one after the other (OpenSSL's
verification lets go of the GIL, so the event loop and the access writer run meanwhile),
and their coroutines answered by one callback on the loop.

Each check is the same :func:`registry.auth.check_signature` with the same outcome: the
client, or its own AuthenticationFailed (``bad_signature``); an unexpected error reaches
only the request it belongs to."""

from __future__ import annotations

from collections.abc import Sequence

from registry.auth import ClientDirectory, check_signature
from registry.errors import ServiceUnavailable
from registry.group_commit import GroupWriter
from registry.models import Client

MAX_GROUP = 64
"""Most checks taken at once."""

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

    def __init__(self, *, max_group: int = MAX_GROUP) -> None:
        """Check up to ``max_group`` signatures at once."""
        self._writer: GroupWriter[_Check, Client | Exception] = GroupWriter(
            _check_each,
            name="registry-signatures",
            max_group=max_group,
            stopped=lambda: ServiceUnavailable(
                "the gateway is not accepting reads", code="stopping"
            ),
            # _check_each never raises for one check; a group that fails as a whole
            # (the thread stopping) gives each waiter this.
            failed=lambda _error: ServiceUnavailable("the request's signature was not checked"),
            retry_alone=(),
        )

    def start(self) -> None:
        """Start the checking thread."""
        self._writer.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Check what waits, then stop; later checks get 503."""
        self._writer.stop(timeout)

    async def check(
        self, clients: ClientDirectory, client_id: str, signature: bytes, message: bytes
    ) -> Client:
        """:func:`registry.auth.check_signature` on the checking thread (a
        :data:`registry.auth.SignatureCheck`)."""
        outcome = await self._writer.submit((clients, client_id, signature, message))
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


__all__ = ["MAX_GROUP", "SignatureChecks"]
