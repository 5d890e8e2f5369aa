"""Which issuing authorities a department client may act for.

A client is bound, when it is registered, to the issuer codes it may put into a license
identifier: its own department's USCC always, and any further USCCs or 6-digit
administrative division codes (GB/T 2260) the operator grants it. The name a license shows
as its issuer is the client's registered department name, never text from a request.
"""

from __future__ import annotations

from collections.abc import Iterable

from registry.errors import Forbidden
from registry.models import Client
from sdk.identifiers import InvalidIdentifier, validate_license_issuer_code

MAX_ISSUER_CODES = 64
"""Most issuer codes one client may be bound to."""


def checked_issuer_codes(uscc: str, codes: Iterable[str]) -> list[str]:
    """The issuer codes to store for a client of department ``uscc``: ``codes`` (each a
    valid USCC or administrative division code) and ``uscc`` itself, sorted, without
    repeats. Raises ValueError for a malformed code or too many."""
    checked = {uscc}
    for code in codes:
        try:
            checked.add(validate_license_issuer_code(code))
        except InvalidIdentifier as exc:
            raise ValueError(f"invalid issuer code {code!r}: {exc}") from exc
    if len(checked) > MAX_ISSUER_CODES:
        raise ValueError(f"at most {MAX_ISSUER_CODES} issuer codes per client")
    return sorted(checked)


def issuer_codes_of(client: Client) -> frozenset[str]:
    """The issuer codes ``client`` may issue under (its USCC for clients registered before
    clients were bound to codes)."""
    return frozenset(client.issuer_codes or ()) | {client.uscc}


def check_issuer(client: Client, issuer_code: str, issuer_name: str | None) -> str:
    """The issuer name to record for a license of ``issuer_code`` issued by ``client``: the
    client's registered name. Raises Forbidden (403) — and nothing is stored — when the
    client is not bound to ``issuer_code``, or names itself otherwise (``issuer_name``
    given and not its registered name)."""
    if issuer_code not in issuer_codes_of(client):
        raise Forbidden(
            f"client {client.id} may not issue licenses as issuer {issuer_code}",
            code="wrong_department",
        )
    if issuer_name is not None and issuer_name != client.name:
        raise Forbidden(
            f"client {client.id} issues as {client.name!r}, not {issuer_name!r}",
            code="wrong_issuer_name",
        )
    return client.name


__all__ = ["MAX_ISSUER_CODES", "check_issuer", "checked_issuer_codes", "issuer_codes_of"]
