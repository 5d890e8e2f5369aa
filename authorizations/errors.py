"""The errors of the authorizations domain: one base, a subclass per kind of failure."""

from __future__ import annotations

import enum


class AuthorizationError(Exception):
    """Base of every error of the authorizations domain."""

    code = "authorization_error"
    """A stable machine-readable code."""


class InvalidTerms(AuthorizationError):
    """Terms of an authorization that cannot be granted as they are (unknown item or
    purpose, a window that ends before it starts, a legal basis without what it needs)."""

    code = "invalid_authorization_terms"


class CatalogueError(AuthorizationError):
    """A catalogue file that does not parse or contradicts itself."""

    code = "invalid_catalogue"


class ConsentInvalid(AuthorizationError):
    """Consent evidence that does not prove what the terms need."""

    code = "consent_invalid"


class LogChainBroken(AuthorizationError):
    """A sequence of access log entries that is not one unbroken hash chain: an entry
    tampered with, missing, or out of its place."""

    code = "access_log_chain_broken"


class RefusalRule(enum.StrEnum):
    """The gateway's rules, in the order they are checked; a refusal names the first that
    failed."""

    RECIPIENT = "caller_not_recipient"
    """The calling department is not the authorization's recipient."""
    SUBJECT = "subject_mismatch"
    """The data asked for is not about the authorization's subject."""
    SCOPE = "item_out_of_scope"
    """The data item is not among those authorized."""
    PURPOSE = "purpose_mismatch"
    """The stated purpose is not the authorized purpose."""
    WINDOW = "outside_validity_window"
    """The authorization is not yet, or no longer, valid."""
    REVOKED = "authorization_revoked"
    """The authorization was revoked."""
    USES = "no_uses_left"
    """Every permitted use was made."""


GATEWAY_ORDER: tuple[RefusalRule, ...] = tuple(RefusalRule)
"""The gateway's checks in the order they run."""


class AccessRefused(AuthorizationError):
    """The gateway refused an access; ``rule`` is the first rule that failed."""

    code = "access_refused"

    def __init__(self, rule: RefusalRule, message: str) -> None:
        super().__init__(message)
        self.rule = rule
        """The first rule that failed."""


__all__ = [
    "GATEWAY_ORDER",
    "AccessRefused",
    "AuthorizationError",
    "CatalogueError",
    "ConsentInvalid",
    "InvalidTerms",
    "LogChainBroken",
    "RefusalRule",
]
