"""A subject's own credit calls: filing the repair application (信用修复) for its own
record. The subject signs the application's terms — which record, which subject (a salted
commitment), the SM3 of its evidence, whether its obligations are met, when, and a nonce —
with its own key: an enterprise (client role ``subject``) over :func:`repair_sign_bytes`;
for a citizen, the identity provider that authenticated them attests their approval over
:func:`repair_approval_bytes`, as it does for data-sharing consent. The registry accepts
each signed application once (a replay is refused 409), and only for the signer's own
record (403 otherwise). The pure part (terms, hashes, sign bytes, the request) is shared by
:class:`CreditSubjectClient` and :class:`AsyncCreditSubjectClient`."""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from chain.crypto import PrivateKey, sm3
from chain.primitives import Hash32
from sdk.commitments import canonical_json
from sdk.credit_calls import CREDIT_PATH, objects_of
from sdk.data_receipts import subject_commitment
from sdk.json_shapes import json_object
from sdk.pages import Page, cursor_of, walk, walk_async
from sdk.record_calls import chain_id_call
from sdk.trust import TrustClient
from sdk.trust_async import AsyncTrustClient
from sdk.trust_core import Call, json_request

REPAIR_TERMS_PREFIX = b"lianxin/credit-repair-terms/v1\x00"
"""Domain separation of the hash of a repair application's terms."""

REPAIR_SIGN_PREFIX = b"lianxin/credit-repair-application/v1\x00"
"""Prefix of what an enterprise signs to file its own repair application."""

REPAIR_APPROVAL_PREFIX = b"lianxin/credit-repair-approval/v1\x00"
"""Prefix of what an identity provider signs to attest a citizen's own application."""

TERMS_VERSION = 1
"""Format version of repair terms."""

TERMS_KEYS = frozenset(
    {
        "version",
        "chainId",
        "recordId",
        "subjectKind",
        "subjectCommitment",
        "subjectSalt",
        "evidenceHash",
        "obligationsFulfilled",
        "at",
        "nonce",
    }
)
"""The keys of the terms, all required, no other."""

SUBJECT_KINDS = ("enterprise", "citizen")

OWN_REPAIR_PATH = f"{CREDIT_PATH}/repairs/own"
"""Where a subject files its own application."""

OWN_REPAIRS_PATH = "/v1/tracker/repairs"
"""Where an enterprise lists the applications it filed."""


def evidence_hash(evidence: str) -> str:
    """SM3 (hex) of the evidence as the registry keeps it (surrounding spaces dropped)."""
    return sm3(evidence.strip().encode()).hex()


def repair_terms(
    *,
    chain_id: int,
    record_id: str,
    subject_kind: str,
    subject_id: str,
    evidence: str,
    obligations_fulfilled: bool,
    at: int | None = None,
    salt: bytes | None = None,
    nonce: bytes | None = None,
) -> dict[str, Any]:
    """The terms of a subject's own application (see the module docstring)."""
    if subject_kind not in SUBJECT_KINDS:
        raise ValueError(f"subject_kind is one of {SUBJECT_KINDS}")
    salt = salt if salt is not None else os.urandom(16)
    return {
        "version": TERMS_VERSION,
        "chainId": chain_id,
        "recordId": record_id.lower(),
        "subjectKind": subject_kind,
        "subjectCommitment": subject_commitment(subject_kind, subject_id, salt).hex(),
        "subjectSalt": salt.hex(),
        "evidenceHash": evidence_hash(evidence),
        "obligationsFulfilled": obligations_fulfilled,
        "at": int(time.time()) if at is None else at,
        "nonce": (nonce if nonce is not None else os.urandom(16)).hex(),
    }


@dataclass(frozen=True)
class RepairTerms:
    """Terms as checked by :func:`parse_repair_terms`."""

    chain_id: int
    record_id: str
    subject_kind: str
    subject_commitment: bytes
    subject_salt: bytes
    evidence_hash: str
    obligations_fulfilled: bool
    at: int
    nonce: str


def _hex(value: Any, size: int, name: str) -> bytes:
    if not isinstance(value, str) or len(value) != size * 2:
        raise ValueError(f"{name} is {size} bytes in hex")
    return bytes.fromhex(value)


def parse_repair_terms(value: Any) -> RepairTerms:
    """The terms ``value`` (a JSON object of exactly :data:`TERMS_KEYS`); raises
    ValueError naming the first thing wrong."""
    if not isinstance(value, Mapping) or set(value) != TERMS_KEYS:
        raise ValueError(f"terms are an object of exactly {sorted(TERMS_KEYS)}")
    if value["version"] != TERMS_VERSION:
        raise ValueError(f"terms version is {TERMS_VERSION}")
    for name in ("chainId", "at"):
        if not isinstance(value[name], int) or isinstance(value[name], bool) or value[name] < 0:
            raise ValueError(f"{name} is a whole number")
    if value["subjectKind"] not in SUBJECT_KINDS:
        raise ValueError(f"subjectKind is one of {SUBJECT_KINDS}")
    if not isinstance(value["obligationsFulfilled"], bool):
        raise ValueError("obligationsFulfilled is true or false")
    record_id = value["recordId"]
    if not isinstance(record_id, str) or len(record_id) != 64:
        raise ValueError("recordId is 64 hex digits")
    _hex(record_id, 32, "recordId")
    _hex(value["evidenceHash"], 32, "evidenceHash")
    _hex(value["nonce"], 16, "nonce")
    return RepairTerms(
        chain_id=value["chainId"],
        record_id=record_id.lower(),
        subject_kind=value["subjectKind"],
        subject_commitment=_hex(value["subjectCommitment"], 32, "subjectCommitment"),
        subject_salt=_hex(value["subjectSalt"], 16, "subjectSalt"),
        evidence_hash=value["evidenceHash"].lower(),
        obligations_fulfilled=value["obligationsFulfilled"],
        at=value["at"],
        nonce=value["nonce"].lower(),
    )


def repair_terms_hash(terms: Mapping[str, Any]) -> Hash32:
    """SM3 of the prefix and the canonical JSON of the terms."""
    return sm3(REPAIR_TERMS_PREFIX + canonical_json(dict(terms)))


def repair_sign_bytes(chain_id: int, terms_digest: bytes) -> bytes:
    """What an enterprise signs to file its own application with terms ``terms_digest``."""
    return REPAIR_SIGN_PREFIX + chain_id.to_bytes(8, "big") + bytes(terms_digest)


def repair_approval_bytes(chain_id: int, terms_digest: bytes) -> bytes:
    """What an identity provider signs to attest that the citizen the terms commit to
    (whom it authenticated) files this application."""
    return REPAIR_APPROVAL_PREFIX + chain_id.to_bytes(8, "big") + bytes(terms_digest)


def own_repair_body(
    terms: Mapping[str, Any], evidence: str, signature: bytes, subject_id: str | None = None
) -> dict[str, Any]:
    """The body of ``POST /v1/credit/repairs/own`` (``subject_id``: the citizen's resident
    ID, when an identity provider files)."""
    body: dict[str, Any] = {
        "terms": dict(terms),
        "evidence": evidence,
        "signature": base64.b64encode(signature).decode("ascii"),
    }
    if subject_id is not None:
        body["subject_id"] = subject_id
    return body


def own_repair_call(body: Mapping[str, Any]) -> Call[dict[str, Any]]:
    """The request filing ``body``; answers the application as the registry shows it."""
    return Call(json_request("POST", OWN_REPAIR_PATH, dict(body)), json_object)


def _repairs_page(value: Any) -> Page[dict[str, Any]]:
    value = json_object(value)
    return Page(objects_of(value["repairs"]), cursor_of(value))


def own_repairs_call(after: str | None) -> Call[Page[dict[str, Any]]]:
    """One page of the enterprise's own applications (``GET /v1/tracker/repairs``) and
    the cursor of the next, None on the last."""
    path = (
        OWN_REPAIRS_PATH if after is None else f"{OWN_REPAIRS_PATH}?{urlencode({'after': after})}"
    )
    return Call(json_request("GET", path), _repairs_page)


def enterprise_filing(
    key: PrivateKey,
    chain_id: int,
    uscc: str,
    record_id: str,
    evidence: str,
    obligations_fulfilled: bool,
) -> dict[str, Any]:
    """The body of an enterprise's own application, signed with its ``key``."""
    terms = repair_terms(
        chain_id=chain_id,
        record_id=record_id,
        subject_kind="enterprise",
        subject_id=uscc,
        evidence=evidence,
        obligations_fulfilled=obligations_fulfilled,
    )
    signature = key.sign(repair_sign_bytes(chain_id, repair_terms_hash(terms)))
    return own_repair_body(terms, evidence, signature)


def citizen_filing(
    key: PrivateKey,
    chain_id: int,
    resident_id: str,
    record_id: str,
    evidence: str,
    obligations_fulfilled: bool,
) -> dict[str, Any]:
    """The body of a citizen's own application, attested with the identity provider's
    ``key`` (it authenticated the citizen ``resident_id`` and took their approval)."""
    terms = repair_terms(
        chain_id=chain_id,
        record_id=record_id,
        subject_kind="citizen",
        subject_id=resident_id,
        evidence=evidence,
        obligations_fulfilled=obligations_fulfilled,
    )
    signature = key.sign(repair_approval_bytes(chain_id, repair_terms_hash(terms)))
    return own_repair_body(terms, evidence, signature, subject_id=resident_id)


class CreditSubjectClient(TrustClient):
    """A subject's own credit calls (an enterprise's client, or an identity provider's
    for the citizens it authenticates)."""

    def __enter__(self) -> CreditSubjectClient:
        return self

    def file_own_repair(
        self, uscc: str, record_id: str, evidence: str, *, obligations_fulfilled: bool
    ) -> dict[str, Any]:
        """As an enterprise (``uscc``, role ``subject``): file the repair application for
        its own record, signed with this client's key."""
        chain_id = self._run(chain_id_call())
        body = enterprise_filing(
            self._key, chain_id, uscc, record_id, evidence, obligations_fulfilled
        )
        return self._run(own_repair_call(body))

    def attest_own_repair(
        self, resident_id: str, record_id: str, evidence: str, *, obligations_fulfilled: bool
    ) -> dict[str, Any]:
        """As an identity provider: file the application of the citizen ``resident_id``
        (authenticated, approving) for their own record."""
        chain_id = self._run(chain_id_call())
        body = citizen_filing(
            self._key, chain_id, resident_id, record_id, evidence, obligations_fulfilled
        )
        return self._run(own_repair_call(body))

    def own_repairs(self) -> list[dict[str, Any]]:
        """As an enterprise: the repair applications it filed (every page), newest first,
        each with its state and the authority's decision."""
        return walk(lambda after: self._run(own_repairs_call(after)))


class AsyncCreditSubjectClient(AsyncTrustClient):
    """:class:`CreditSubjectClient` on ``httpx.AsyncClient``."""

    async def __aenter__(self) -> AsyncCreditSubjectClient:
        return self

    async def file_own_repair(
        self, uscc: str, record_id: str, evidence: str, *, obligations_fulfilled: bool
    ) -> dict[str, Any]:
        """As :meth:`CreditSubjectClient.file_own_repair`."""
        chain_id = await self._run(chain_id_call())
        body = enterprise_filing(
            self._key, chain_id, uscc, record_id, evidence, obligations_fulfilled
        )
        return await self._run(own_repair_call(body))

    async def attest_own_repair(
        self, resident_id: str, record_id: str, evidence: str, *, obligations_fulfilled: bool
    ) -> dict[str, Any]:
        """As :meth:`CreditSubjectClient.attest_own_repair`."""
        chain_id = await self._run(chain_id_call())
        body = citizen_filing(
            self._key, chain_id, resident_id, record_id, evidence, obligations_fulfilled
        )
        return await self._run(own_repair_call(body))

    async def own_repairs(self) -> list[dict[str, Any]]:
        """As :meth:`CreditSubjectClient.own_repairs`."""
        return await walk_async(lambda after: self._run(own_repairs_call(after)))


__all__ = [
    "OWN_REPAIRS_PATH",
    "OWN_REPAIR_PATH",
    "REPAIR_APPROVAL_PREFIX",
    "REPAIR_SIGN_PREFIX",
    "REPAIR_TERMS_PREFIX",
    "TERMS_KEYS",
    "AsyncCreditSubjectClient",
    "CreditSubjectClient",
    "RepairTerms",
    "citizen_filing",
    "enterprise_filing",
    "evidence_hash",
    "own_repair_body",
    "own_repair_call",
    "own_repairs_call",
    "parse_repair_terms",
    "repair_approval_bytes",
    "repair_sign_bytes",
    "repair_terms",
    "repair_terms_hash",
]
