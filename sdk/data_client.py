"""``DataClient`` and ``AsyncDataClient``: data sharing under authorization, on the trust
clients' request core (signed requests, retries, typed errors).

A department asks for authorizations and reads through the gateway, citing one; a refusal
raises :class:`AccessRefused` carrying the signed receipt of the refused access. An
enterprise (a client with the ``subject`` role) consents with its own key after checking
the terms and that the commitment is of itself, revokes, and reads its data tracker. An
identity provider attests a citizen's approval and opens the citizen's tracker session.
Receipts verify offline through :func:`sdk.data_receipts.verify_receipt` (the one bundle
verifier underneath).

Listings come in pages: ``*_page(limit=, after=)`` returns one :class:`Page` (its ``next``
cursor is the ``after`` of the following one); the plain listing methods walk every page."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

from chain.commit import ValidatorSet
from sdk.bundle_links import BundleVerdict
from sdk.data_receipts import (
    AccessReceipt,
    ReceiptInvalid,
    approval_sign_bytes,
    consent_sign_bytes,
    subject_commitment,
    terms_hash,
    verify_access_chain,
    verify_receipt,
)
from sdk.json_shapes import json_array, json_object, json_text, json_uint
from sdk.pages import Page, cursor_of, walk, walk_async
from sdk.trust import AsyncTrustClient, TrustClient
from sdk.trust_core import Answer, Call, Exchange, json_request, registry_error
from sdk.trust_types import RegistryError, RegistryUnavailable

_T = TypeVar("_T")


class AccessRefused(RegistryError):
    """The gateway refused a read (403): ``code`` is the first rule that failed, and
    ``receipt`` the signed log entry of the refused access."""

    def __init__(self, code: str, message: str, receipt: AccessReceipt) -> None:
        super().__init__(403, code, message)
        self.receipt = receipt


@dataclass(frozen=True)
class Authorization:
    """An authorization as its parties see it."""

    id: str
    """The id departments cite."""
    status: str
    """requested, granted, revoked or expired."""
    terms: Mapping[str, Any]
    """The terms (what consent is given to)."""
    terms_hash: str
    """Hex SM3 of the terms (see :func:`sdk.data_receipts.terms_hash`)."""
    subject_salt: bytes
    """Salt of the subject commitment."""
    consent: Mapping[str, Any] | None
    """The consent evidence, once given."""
    uses_made: int
    """Reads allowed so far."""
    revoked_at: int | None
    """Second of revocation."""
    events: Sequence[Mapping[str, Any]]
    """Anchored events (grant, amend, revoke, expire), with proof bundles once anchored."""

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Authorization:
        """Parse the registry's answer."""
        return cls(
            id=str(value["id"]),
            status=str(value["status"]),
            terms=dict(value["terms"]),
            terms_hash=str(value["terms_hash"]),
            subject_salt=bytes.fromhex(value["subject_salt"]),
            consent=value.get("consent"),
            uses_made=int(value["uses_made"]),
            revoked_at=value.get("revoked_at"),
            events=list(value.get("events", [])),
        )

    def check_terms(
        self, *, subject_kind: str | None = None, subject_id: str | None = None
    ) -> bytes:
        """The terms hash recomputed from the terms (ReceiptInvalid if it is not the one
        the registry states); with ``subject_id``, also that the subject commitment is of
        that subject."""
        digest = terms_hash(self.terms)
        if digest.hex() != self.terms_hash:
            raise ReceiptInvalid("the terms do not hash to the stated terms hash")
        if subject_id is not None:
            kind = subject_kind or str(self.terms["subjectKind"])
            if (
                subject_commitment(kind, subject_id, self.subject_salt).hex()
                != (self.terms["subjectCommitment"])
            ):
                raise ReceiptInvalid("the authorization is about another subject")
        return bytes(digest)


@dataclass(frozen=True)
class DataResult:
    """An allowed read: the data and the receipt of the access."""

    data: Mapping[str, Any]
    """What the gateway served."""
    receipt: AccessReceipt
    """The signed log entry of the access (its bundle comes once anchored)."""


@dataclass(frozen=True)
class AccessRecord:
    """One access as the tracker lists it."""

    record_id: str
    authorization_id: str | None
    caller: str
    item: str
    purpose: str
    outcome: str
    at: int
    block_number: int | None
    receipt: AccessReceipt

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> AccessRecord:
        """Parse one access of the registry's answer."""
        return cls(
            record_id=str(value["recordId"]),
            authorization_id=value.get("authorizationId"),
            caller=str(value["caller"]),
            item=str(value["item"]),
            purpose=str(value["purpose"]),
            outcome=str(value["outcome"]),
            at=int(value["at"]),
            block_number=value.get("blockNumber"),
            receipt=AccessReceipt.from_json(value["receipt"]),
        )


@dataclass(frozen=True)
class CheckRecord:
    """One credit check made of the subject, as its tracker lists it."""

    record_id: str
    checker: str
    checker_name: str
    activity: str
    on_date: str
    decision: str
    at: int
    block_number: int | None
    receipt: AccessReceipt
    """Of kind ``credit-check``: verified as an access's receipt is."""

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> CheckRecord:
        """Parse one check of the registry's answer."""
        return cls(
            record_id=str(value["recordId"]),
            checker=str(value["checker"]),
            checker_name=str(value["checkerName"]),
            activity=str(value["activity"]),
            on_date=str(value["onDate"]),
            decision=str(value["decision"]),
            at=int(value["at"]),
            block_number=value.get("blockNumber"),
            receipt=AccessReceipt.from_json(value["receipt"]),
        )


def _authorization(value: Any) -> Authorization:
    return Authorization.from_json(value)


def _authorizations(value: Any) -> Page[Authorization]:
    value = json_object(value)
    items = [Authorization.from_json(item) for item in json_array(value["authorizations"])]
    return Page(items, cursor_of(value))


def _accesses(value: Any) -> Page[AccessRecord]:
    value = json_object(value)
    return Page(
        [AccessRecord.from_json(item) for item in json_array(value["accesses"])], cursor_of(value)
    )


def _checks(value: Any) -> Page[CheckRecord]:
    value = json_object(value)
    return Page([CheckRecord.from_json(c) for c in json_array(value["checks"])], cursor_of(value))


def page_call(
    path: str, parse: Callable[[Any], Page[_T]], limit: int | None, after: str | None
) -> Call[Page[_T]]:
    """``GET path`` for one page (``limit`` entries at most, after cursor ``after``)."""
    query: dict[str, str | int] = {}
    if limit is not None:
        query["limit"] = limit
    if after is not None:
        query["after"] = after
    return Call(json_request("GET", f"{path}?{urlencode(query)}" if query else path), parse)


def _data(value: Any) -> DataResult:
    return DataResult(data=dict(value["data"]), receipt=AccessReceipt.from_json(value["receipt"]))


def _registry_facts(value: Any) -> tuple[bytes, int]:
    value = json_object(value)
    return bytes.fromhex(json_text(value["registryKey"])), json_uint(value["chainId"])


def _path(authorization_id: str, suffix: str = "") -> str:
    return f"/v1/authorizations/{quote(authorization_id, safe='')}{suffix}"


def ask_call(terms: Mapping[str, Any]) -> Call[Authorization]:
    """``POST /v1/authorizations``."""
    return Call(json_request("POST", "/v1/authorizations", dict(terms)), _authorization)


def consent_call(authorization_id: str, signature: bytes) -> Call[Authorization]:
    """``POST /v1/authorizations/{id}/consent``."""
    body = {"signature": base64.b64encode(signature).decode("ascii")}
    return Call(json_request("POST", _path(authorization_id, "/consent"), body), _authorization)


def read_call(authorization_id: str, item: str, purpose: str, resource: str) -> Call[DataResult]:
    """``POST /v1/data/read``."""
    body = {
        "authorization_id": authorization_id,
        "item": item,
        "purpose": purpose,
        "resource": resource,
    }
    return Call(json_request("POST", "/v1/data/read", body), _data)


def refusal_of(answer: Answer) -> AccessRefused | None:
    """The AccessRefused of a 403 gateway answer carrying a receipt, else None."""
    if answer.status_code != 403:
        return None
    try:
        error = json.loads(answer.body)["error"]
        receipt = AccessReceipt.from_json(error["details"]["receipt"])
    except (ValueError, KeyError, TypeError, ReceiptInvalid):
        return None
    return AccessRefused(str(error["code"]), str(error["message"]), receipt)


class _DataCalls:
    """The calls both clients make, and the offline checks (no network)."""

    @staticmethod
    def verify_receipt(
        receipt: AccessReceipt,
        validator_set: ValidatorSet,
        *,
        chain_id: int,
        registry_key: bytes,
        notary: bytes | None = None,
    ) -> BundleVerdict:
        """:func:`sdk.data_receipts.verify_receipt`."""
        return verify_receipt(
            receipt, validator_set, chain_id=chain_id, registry_key=registry_key, notary=notary
        )

    @staticmethod
    def verify_stream(accesses: Sequence[AccessRecord], head: bytes | None = None) -> None:
        """Check that ``accesses`` (one authorization's, in order) are one unbroken hash
        chain (:func:`sdk.data_receipts.verify_access_chain`)."""
        verify_access_chain([access.receipt.entry for access in accesses], head=head)


class DataClient(TrustClient, _DataCalls):
    """Synchronous data-sharing client (see the module docstring)."""

    def __enter__(self) -> DataClient:
        return self

    def _read(self, call: Call[_T]) -> _T:
        exchange: Exchange[_T] = self._exchange(call)
        while (attempt := exchange.next_attempt()) is not None:
            answer = self._send(attempt)
            if isinstance(answer, Answer):
                refusal = refusal_of(answer)
                if refusal is not None:
                    raise refusal
            exchange.receive(answer)
        return exchange.result()

    def request_authorization(self, **terms: Any) -> Authorization:
        """Ask for an authorization (subject_kind, subject_id, controller, recipient,
        items, purpose, legal_basis, basis_citation, valid_from, valid_until, max_uses,
        discloseAfter as ``disclose_after``)."""
        return self._run(ask_call(terms))

    def grant(self, authorization: Authorization, *, chain_id: int) -> Authorization:
        """Consent as the enterprise the authorization is about (this client's key):
        the terms hash is recomputed and signed (``consent_sign_bytes``)."""
        digest = authorization.check_terms()
        signature = self._key.sign(consent_sign_bytes(chain_id, digest))
        return self._run(consent_call(authorization.id, signature))

    def attest_approval(
        self, authorization: Authorization, resident_id: str, *, chain_id: int
    ) -> Authorization:
        """As an identity provider: attest that citizen ``resident_id`` (whom it
        authenticated) approved the authorization, after checking it is about them."""
        digest = authorization.check_terms(subject_kind="citizen", subject_id=resident_id)
        message = approval_sign_bytes(
            chain_id, bytes.fromhex(str(authorization.terms["subjectCommitment"])), digest
        )
        return self._run(consent_call(authorization.id, self._key.sign(message)))

    def authorization(self, authorization_id: str) -> Authorization:
        """One authorization, with its anchored events."""
        return self._run(Call(json_request("GET", _path(authorization_id)), _authorization))

    def authorizations_page(
        self, *, limit: int | None = None, after: str | None = None
    ) -> Page[Authorization]:
        """One page of the department's authorizations, newest first."""
        return self._run(page_call("/v1/authorizations", _authorizations, limit, after))

    def authorizations(self) -> list[Authorization]:
        """The department's authorizations (every page), newest first."""
        return walk(lambda after: self.authorizations_page(after=after))

    def revoke(self, authorization_id: str) -> Authorization:
        """Revoke: the very next access is refused."""
        return self._run(
            Call(json_request("POST", _path(authorization_id, "/revoke")), _authorization)
        )

    def read(self, authorization_id: str, *, item: str, purpose: str, resource: str) -> DataResult:
        """Read through the gateway; raises AccessRefused (with its receipt) on refusal."""
        return self._read(read_call(authorization_id, item, purpose, resource))

    def access(self, record_id: str) -> AccessRecord:
        """One access with its receipt, its bundle once anchored."""
        call = Call(
            json_request("GET", f"/v1/data/accesses/{quote(record_id, safe='')}"),
            AccessRecord.from_json,
        )
        return self._run(call)

    def stream_page(
        self, authorization_id: str, *, limit: int | None = None, after: str | None = None
    ) -> Page[AccessRecord]:
        """One page of the accesses citing one authorization, in hash-chain order."""
        path = _path(authorization_id, "/accesses")
        return self._run(page_call(path, _accesses, limit, after))

    def stream(self, authorization_id: str) -> list[AccessRecord]:
        """Every access citing one authorization (every page), in hash-chain order."""
        return walk(lambda after: self.stream_page(authorization_id, after=after))

    def tracker_authorizations_page(
        self, *, limit: int | None = None, after: str | None = None
    ) -> Page[Authorization]:
        """As an enterprise: one page of its own authorizations, newest first."""
        return self._run(page_call("/v1/tracker/authorizations", _authorizations, limit, after))

    def tracker_authorizations(self) -> list[Authorization]:
        """As an enterprise: its own authorizations (every page), newest first."""
        return walk(lambda after: self.tracker_authorizations_page(after=after))

    def tracker_accesses_page(
        self, *, limit: int | None = None, after: str | None = None
    ) -> Page[AccessRecord]:
        """As an enterprise: one page of who accessed its data, newest first."""
        return self._run(page_call("/v1/tracker/accesses", _accesses, limit, after))

    def tracker_accesses(self) -> list[AccessRecord]:
        """As an enterprise: who accessed its data (every page), newest first."""
        return walk(lambda after: self.tracker_accesses_page(after=after))

    def tracker_checks_page(
        self, *, limit: int | None = None, after: str | None = None
    ) -> Page[CheckRecord]:
        """As an enterprise: one page of the credit checks made of it, newest first."""
        return self._run(page_call("/v1/tracker/checks", _checks, limit, after))

    def tracker_checks(self) -> list[CheckRecord]:
        """As an enterprise: the credit checks made of it (every page), newest first."""
        return walk(lambda after: self.tracker_checks_page(after=after))

    def open_tracker_session(self, resident_id: str) -> Mapping[str, Any]:
        """As an identity provider: a tracker session for a citizen it authenticated
        (``session``, ``path`` of the page, ``expires``)."""
        body = {"subject_id": resident_id}
        return self._run(Call(json_request("POST", "/v1/tracker/sessions", body), json_object))

    def registry_key(self) -> bytes:
        """The key that signs access log entries (fetch once; better, pin it)."""
        return self.registry_facts()[0]

    def registry_facts(self) -> tuple[bytes, int]:
        """The key that signs access log entries and the chain they are anchored on."""
        return self._run(Call(json_request("GET", "/v1/data/registry-key"), _registry_facts))


class AsyncDataClient(AsyncTrustClient, _DataCalls):
    """The same client on ``httpx.AsyncClient``."""

    async def __aenter__(self) -> AsyncDataClient:
        return self

    async def _read(self, call: Call[_T]) -> _T:
        exchange: Exchange[_T] = self._exchange(call)
        while (attempt := exchange.next_attempt()) is not None:
            answer = await self._send(attempt)
            if isinstance(answer, Answer):
                refusal = refusal_of(answer)
                if refusal is not None:
                    raise refusal
            exchange.receive(answer)
        return exchange.result()

    async def request_authorization(self, **terms: Any) -> Authorization:
        """As :meth:`DataClient.request_authorization`."""
        return await self._run(ask_call(terms))

    async def grant(self, authorization: Authorization, *, chain_id: int) -> Authorization:
        """As :meth:`DataClient.grant`."""
        digest = authorization.check_terms()
        signature = self._key.sign(consent_sign_bytes(chain_id, digest))
        return await self._run(consent_call(authorization.id, signature))

    async def revoke(self, authorization_id: str) -> Authorization:
        """As :meth:`DataClient.revoke`."""
        return await self._run(
            Call(json_request("POST", _path(authorization_id, "/revoke")), _authorization)
        )

    async def read(
        self, authorization_id: str, *, item: str, purpose: str, resource: str
    ) -> DataResult:
        """As :meth:`DataClient.read`."""
        return await self._read(read_call(authorization_id, item, purpose, resource))

    async def authorizations_page(
        self, *, limit: int | None = None, after: str | None = None
    ) -> Page[Authorization]:
        """As :meth:`DataClient.authorizations_page`."""
        return await self._run(page_call("/v1/authorizations", _authorizations, limit, after))

    async def authorizations(self) -> list[Authorization]:
        """As :meth:`DataClient.authorizations`."""
        return await walk_async(lambda after: self.authorizations_page(after=after))

    async def stream_page(
        self, authorization_id: str, *, limit: int | None = None, after: str | None = None
    ) -> Page[AccessRecord]:
        """As :meth:`DataClient.stream_page`."""
        path = _path(authorization_id, "/accesses")
        return await self._run(page_call(path, _accesses, limit, after))

    async def stream(self, authorization_id: str) -> list[AccessRecord]:
        """As :meth:`DataClient.stream`."""
        return await walk_async(lambda after: self.stream_page(authorization_id, after=after))

    async def tracker_accesses_page(
        self, *, limit: int | None = None, after: str | None = None
    ) -> Page[AccessRecord]:
        """As :meth:`DataClient.tracker_accesses_page`."""
        return await self._run(page_call("/v1/tracker/accesses", _accesses, limit, after))

    async def tracker_accesses(self) -> list[AccessRecord]:
        """As :meth:`DataClient.tracker_accesses`."""
        return await walk_async(lambda after: self.tracker_accesses_page(after=after))

    async def tracker_checks_page(
        self, *, limit: int | None = None, after: str | None = None
    ) -> Page[CheckRecord]:
        """As :meth:`DataClient.tracker_checks_page`."""
        return await self._run(page_call("/v1/tracker/checks", _checks, limit, after))

    async def tracker_checks(self) -> list[CheckRecord]:
        """As :meth:`DataClient.tracker_checks`."""
        return await walk_async(lambda after: self.tracker_checks_page(after=after))

    async def tracker_authorizations_page(
        self, *, limit: int | None = None, after: str | None = None
    ) -> Page[Authorization]:
        """As :meth:`DataClient.tracker_authorizations_page`."""
        return await self._run(
            page_call("/v1/tracker/authorizations", _authorizations, limit, after)
        )

    async def tracker_authorizations(self) -> list[Authorization]:
        """As :meth:`DataClient.tracker_authorizations`."""
        return await walk_async(lambda after: self.tracker_authorizations_page(after=after))


__all__ = [
    "AccessRecord",
    "AccessRefused",
    "AsyncDataClient",
    "Authorization",
    "CheckRecord",
    "DataClient",
    "DataResult",
    "Page",
    "RegistryError",
    "RegistryUnavailable",
    "registry_error",
]
