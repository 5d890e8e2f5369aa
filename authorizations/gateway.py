"""The gateway's decision: may this department read this item about this subject, for this
purpose, now? The checks run in the order of :data:`authorizations.errors.GATEWAY_ORDER`
and the first that fails is the refusal's reason. Time is a parameter."""

from __future__ import annotations

from dataclasses import dataclass

from authorizations.catalogue import in_scope
from authorizations.errors import AccessRefused, RefusalRule
from authorizations.terms import AuthorizationTerms
from chain.primitives import Hash32


@dataclass(frozen=True)
class AuthorizationState:
    """An authorization as the gateway sees it at one moment."""

    terms: AuthorizationTerms
    """What it permits."""
    revoked_at: int | None = None
    """The second it was revoked; None while it is not."""
    uses_made: int = 0
    """Reads allowed under it so far."""


@dataclass(frozen=True)
class AccessRequest:
    """One read asked of the gateway."""

    caller: str
    """USCC of the calling department (from its authenticated client)."""
    subject_commitment: Hash32
    """The subject of the data asked for, committed with the authorization's salt."""
    item: str
    """The data item code asked for."""
    purpose: str
    """The purpose the caller states."""


def check_access(state: AuthorizationState, request: AccessRequest, now: int) -> None:
    """Return if ``request`` may be served under ``state`` at second ``now``; raise
    AccessRefused with the first failed rule otherwise: the caller is the recipient; the
    subject matches; the item is in scope; the purpose matches; the window is live
    (``valid_from <= now < valid_until``); not revoked; uses remain."""
    terms = state.terms
    if request.caller != terms.recipient:
        raise AccessRefused(
            RefusalRule.RECIPIENT, "the calling department is not this authorization's recipient"
        )
    if bytes(request.subject_commitment) != bytes(terms.subject_commitment):
        raise AccessRefused(
            RefusalRule.SUBJECT, "the data is not about this authorization's subject"
        )
    if not in_scope(terms.items, request.item):
        raise AccessRefused(RefusalRule.SCOPE, f"item {request.item!r} is not authorized")
    if request.purpose != terms.purpose:
        raise AccessRefused(RefusalRule.PURPOSE, f"purpose {request.purpose!r} is not authorized")
    if not terms.valid_from <= now < terms.valid_until:
        raise AccessRefused(RefusalRule.WINDOW, "the authorization is not valid at this time")
    if state.revoked_at is not None and now >= state.revoked_at:
        raise AccessRefused(RefusalRule.REVOKED, "the authorization was revoked")
    if terms.max_uses is not None and state.uses_made >= terms.max_uses:
        raise AccessRefused(RefusalRule.USES, "every permitted use was made")


def first_failed_rule(
    state: AuthorizationState, request: AccessRequest, now: int
) -> RefusalRule | None:
    """The rule :func:`check_access` would refuse with, or None if it allows."""
    try:
        check_access(state, request, now)
    except AccessRefused as refused:
        return refused.rule
    return None


__all__ = ["AccessRequest", "AuthorizationState", "check_access", "first_failed_rule"]
