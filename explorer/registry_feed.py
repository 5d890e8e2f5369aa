"""What the explorer reads from the registry: a credit record's and an archive package's
events with their leaves (``/v1/audit``), asked with the explorer's own auditor client
(a signed request, as any registry client signs it).

Nothing read here is trusted: the registry's answer is bounded before it is parsed, its
shape is checked, and every event is proven against the explorer's own index of the
chain (:mod:`explorer.trail_proofs`) before a page calls it proven.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from chain.bounded_json import JsonLimitError, loads_bounded
from chain.crypto import PrivateKey
from chain.errors import ChainError
from explorer.http_clients import http_client
from sdk.trust_core import signed_headers

MAX_ANSWER_BYTES = 16 * 1024 * 1024
"""Largest answer read from the registry (a history of a thousand events with their paths
is well under 2 MiB)."""
MAX_ANSWER_DEPTH = 16
"""Deepest nesting of an answer (an event's metadata included)."""
TIMEOUT_S = 30.0


class RegistryUnavailable(Exception):
    """The registry is not configured, did not answer, or answered with something that is
    not a usable answer."""


class RegistryNotFound(Exception):
    """The registry has no such credit record or archive package."""


@dataclass(frozen=True)
class RegistryAccess:
    """Where the registry is and how the explorer signs its requests."""

    url: str
    client_id: str
    key: PrivateKey

    @classmethod
    def from_settings(
        cls, url: str | None, client_id: str | None, key_file: Path | None
    ) -> RegistryAccess | None:
        """The access the settings give, or None when the registry is not configured.
        Raises RegistryUnavailable for a key file that cannot be read."""
        if not url or not client_id or key_file is None:
            return None
        try:
            key = PrivateKey.from_pem(key_file.read_bytes())
        except (OSError, ChainError, ValueError) as exc:
            raise RegistryUnavailable(f"the registry key {key_file} cannot be read: {exc}") from exc
        return cls(url.rstrip("/"), client_id, key)


class RegistryFeed:
    """Signed reads of the registry's auditor routes."""

    def __init__(self, access: RegistryAccess, *, timeout: float = TIMEOUT_S) -> None:
        self.access = access
        self._client = http_client(timeout)

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def credit_history(self, authority: str | None, decision: str) -> dict[str, Any]:
        """The records under 决定书文号 ``decision`` (of ``authority`` when given), with
        their events; raises RegistryNotFound or RegistryUnavailable."""
        query: dict[str, str] = {"decision": decision}
        if authority:
            query["authority"] = authority
        answer = self._get("/v1/audit/credit-records", query)
        _need_list(answer, "records")
        _need_list(answer, "events")
        return answer

    def archive_history(self, archival_code: str) -> dict[str, Any]:
        """The package versions and custody events under 档号 ``archival_code``; raises
        RegistryNotFound or RegistryUnavailable."""
        answer = self._get("/v1/audit/archive-packages", {"archival_code": archival_code})
        _need_list(answer, "versions")
        _need_list(answer, "events")
        return answer

    def _get(self, route: str, query: dict[str, str]) -> dict[str, Any]:
        path = f"{route}?{urlencode(query)}"
        headers = signed_headers(
            self.access.key,
            client_id=self.access.client_id,
            method="GET",
            path=path,
            body=b"",
        )
        body = bytearray()
        try:
            with self._client.stream("GET", self.access.url + path, headers=headers) as response:
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > MAX_ANSWER_BYTES:
                        raise RegistryUnavailable("the registry's answer is too large")
                status = response.status_code
        except httpx.HTTPError as exc:
            raise RegistryUnavailable(
                f"registry at {self.access.url} did not answer: {exc}"
            ) from exc
        if status == 404:
            raise RegistryNotFound(route)
        if status != 200:
            raise RegistryUnavailable(f"the registry answered {status}: {bytes(body[:200])!r}")
        try:
            value = loads_bounded(
                bytes(body), max_bytes=MAX_ANSWER_BYTES, max_depth=MAX_ANSWER_DEPTH
            )
        except (JsonLimitError, ValueError) as exc:
            raise RegistryUnavailable(f"the registry's answer is not JSON: {exc}") from exc
        if not isinstance(value, dict):
            raise RegistryUnavailable("the registry's answer is not an object")
        return value


def _need_list(answer: dict[str, Any], name: str) -> None:
    value = answer.get(name)
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise RegistryUnavailable(f"the registry's answer has no list of {name}")


__all__ = ["RegistryAccess", "RegistryFeed", "RegistryNotFound", "RegistryUnavailable"]
