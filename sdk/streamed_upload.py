"""A request whose body is a file streamed from disk, without I/O: signed over the SM3
declared before sending (``X-Lianxin-Content-SM3``), read in blocks on every attempt, never
whole in memory. The archive's bag upload and the credit import send their files this way."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from chain.crypto import PrivateKey
from sdk.archive_entries import BLOCK_SIZE, sm3_file
from sdk.trust_core import Attempt, Call, Exchange, RegistryRequest, signed_headers
from sdk.trust_types import RegistryError

CONTENT_SM3_HEADER = "X-Lianxin-Content-SM3"
"""The hex SM3 of a streamed body, declared before it is sent (the request is signed over
it)."""

_T = TypeVar("_T")

Progress = Callable[[int, int], None]
"""Called as ``progress(bytes_sent, total_bytes)`` after each block of an upload is sent."""


@dataclass(frozen=True)
class StreamedBody:
    """A request body read from a file on every attempt, known by its SM3 and size."""

    path: Path
    """The file."""
    sm3: str
    """Its SM3 (hex), hashed before the first attempt."""
    size: int
    """Its size."""

    @classmethod
    def of(cls, path: Path) -> StreamedBody:
        """Hash ``path`` (streamed) for sending."""
        digest, size = sm3_file(path)
        return cls(path, digest, size)

    def blocks(self, progress: Progress | None = None) -> Iterator[bytes]:
        """The file in blocks, ``progress(sent, total)`` after each; raises
        ChangedWhileSending if the file grows past the size hashed."""
        sent = 0
        with self.path.open("rb") as stream:
            while block := stream.read(BLOCK_SIZE):
                sent += len(block)
                if sent > self.size:
                    raise ChangedWhileSending(f"{self.path} changed after it was hashed")
                yield block
                if progress is not None:
                    progress(sent, self.size)


class ChangedWhileSending(RegistryError):
    """The file being uploaded changed after its SM3 was declared."""

    def __init__(self, message: str) -> None:
        super().__init__(0, "changed_while_sending", message)


def streamed_request(
    method: str, path: str, body: StreamedBody, content_type: str = "application/octet-stream"
) -> RegistryRequest:
    """A request to ``path`` whose body is ``body``, streamed (the request holds no bytes of
    it; its headers declare its SM3 and length)."""
    headers = {
        CONTENT_SM3_HEADER: body.sm3,
        "Content-Type": content_type,
        "Content-Length": str(body.size),
    }
    return RegistryRequest(method, path, b"", headers)


class StreamedExchange(Exchange[_T]):
    """The exchange of a streamed request (made by :func:`streamed_request`): the retry
    policy of :class:`Exchange`, each attempt signed over the body's declared SM3 rather than
    the (empty) request bytes."""

    def __init__(
        self,
        body: StreamedBody,
        call: Call[_T],
        *,
        client_id: str,
        key: PrivateKey,
        retries: int,
        backoff: float,
    ) -> None:
        super().__init__(call, client_id=client_id, key=key, retries=retries, backoff=backoff)
        self.body = body
        self._signing_key = key

    def next_attempt(self, now: float | None = None) -> Attempt | None:
        """The next try, signed over the body's SM3."""
        attempt = super().next_attempt(now)
        if attempt is None:
            return None
        request = self.call.request
        headers = dict(attempt.headers)
        headers.update(
            signed_headers(
                self._signing_key,
                client_id=self.client_id,
                method=request.method,
                path=request.path,
                body=b"",
                now=now,
                body_sm3=self.body.sm3,
            )
        )
        return Attempt(attempt.delay, attempt.request, headers)


__all__ = [
    "CONTENT_SM3_HEADER",
    "ChangedWhileSending",
    "Progress",
    "StreamedBody",
    "StreamedExchange",
    "streamed_request",
]
