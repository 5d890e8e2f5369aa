"""The data gateway of one registry process: the shared services, the access writer, the
item providers (licenses, public credit, e-archives), the expiry worker, and the steps of one read
(the resource's subject committed with the authorization's salt, the department's signed
request as the log keeps it)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request

from authorizations.access_log import RequestFacts
from authorizations.terms import SubjectKind, subject_commitment
from chain.crypto import sm3
from chain.primitives import Hash32
from registry.archives.service import ArchiveService
from registry.authorizations.access import AccessWriter
from registry.authorizations.archive_provider import ROOT as ARCHIVE_ROOT
from registry.authorizations.archive_provider import ArchiveProvider
from registry.authorizations.check_trail import CheckTrailWriter
from registry.authorizations.credit_provider import CreditProvider
from registry.authorizations.expiry import expiry_lease, run_expiry_when_leased
from registry.authorizations.models import AuthorizationRow
from registry.authorizations.providers import ItemProvider, LicenseProvider, SubjectRef
from registry.authorizations.service import Sharing
from registry.caches import LruCache
from registry.credit.check_log import CheckLogWriter
from registry.credit.keys import CreditKeys
from registry.deps import RegistryState
from registry.errors import ServiceUnavailable
from sdk.trust import CLIENT_HEADER, NONCE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER

logger = logging.getLogger(__name__)

SALT_CACHE_SIZE = 10_000
"""Authorizations whose subject salt (it never changes) is kept open in memory."""


@dataclass(frozen=True)
class _Subject:
    """An authorization's subject as the gateway matches resources against it (it never
    changes)."""

    kind: str
    salt: bytes
    index: str
    commitment: Hash32


class DataGateway:
    """Everything the authorization, gateway and tracker routes share in one process."""

    def __init__(self, state: RegistryState, *, clock: Callable[[], float] = time.time) -> None:
        """Serve from the registry's ``state``; decide at ``clock``."""
        self.sharing = Sharing(state.db, state.chain, state.caches, clock=clock)
        self.writer = AccessWriter(self.sharing)
        self.providers: dict[str, ItemProvider] = {
            "license": LicenseProvider(state.db, self.sharing.signer),
            "credit": CreditProvider(state.db, self._credit_keys, self._clock),
        }
        """Top-level item code → the provider of its data; archives register theirs
        here."""
        self._keys: CreditKeys | None = None
        self._subjects: LruCache[str, _Subject] = LruCache(SALT_CACHE_SIZE)

    def _clock(self) -> float:
        return self.sharing.clock()

    def _credit_keys(self) -> CreditKeys:
        if self._keys is None:
            self._keys = CreditKeys.for_signing_key(self.sharing.signer.key)
        return self._keys

    def provider_for(self, item: str) -> ItemProvider | None:
        """The provider of ``item``'s top-level code, if one is registered."""
        return self.providers.get(item.split(".", 1)[0])

    def _subject(self, authorization_id: str) -> _Subject | None:
        found = self._subjects.get(authorization_id)
        if found is None:
            with self.sharing.db.read_session() as session:
                row = session.get(AuthorizationRow, authorization_id)
                if row is None:
                    return None
                kind, sealed = row.subject_kind, row.subject_salt_sealed
                index, commitment = row.subject_index, row.subject_commitment
            salt = self.sharing.signer.vault().open(sealed)
            found = _Subject(kind, salt, index, Hash32(bytes.fromhex(commitment)))
            self._subjects.put(authorization_id, found)
        return found

    def resource_commitment(
        self, provider: ItemProvider, authorization_id: str, resource: str
    ) -> Hash32 | None:
        """The subject of ``resource`` committed with the authorization's salt (what the
        gateway compares with the authorization's subject); None if either is unknown. A
        provider that keeps only its subjects' blind index (archives) is matched on the
        index: equal to the authorization's, the resource is about its subject."""
        subject = self._subject(authorization_id)
        if subject is None:
            return None
        blind = getattr(provider, "blind_subject", None)
        if blind is not None:
            found = blind(resource)
            if found is None or (found.kind, found.index) != (subject.kind, subject.index):
                return None
            return subject.commitment
        return self.commitment_of(authorization_id, provider.subject_of(resource))

    def commitment_of(self, authorization_id: str, ref: SubjectRef | None) -> Hash32 | None:
        """``ref`` committed with the authorization's salt; None if either is unknown or
        the kinds differ (the subject then never matches)."""
        subject = self._subject(authorization_id)
        if subject is None or ref is None or ref.kind is not SubjectKind(subject.kind):
            return None
        return subject_commitment(ref.kind, ref.identifier, subject.salt)

    @staticmethod
    def item_of(provider: ItemProvider, asked: str, resource: str) -> str:
        """The item a read is decided and logged under: the most specific item the
        resource belongs to where its provider tells (an archive package's class), else
        the item asked for."""
        item_of = getattr(provider, "item_of", None)
        found = None if item_of is None else item_of(resource)
        return asked if found is None else str(found)


def archive_service(app: FastAPI) -> ArchiveService:
    """The application's archive service, made on first use (as the archive routes do)."""
    service: ArchiveService | None = getattr(app.state, "archives", None)
    if service is None:
        state: RegistryState = app.state.registry
        service = ArchiveService(state.db, state.chain, state.settings)
        app.state.archives = service
    return service


def request_facts(request: Request, body_sm3: str) -> RequestFacts:
    """The department's signed request as the access log keeps it (``body_sm3``: the hex
    SM3 of its body, as its signature was checked over)."""
    headers = request.headers
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RequestFacts(
        method=request.method,
        path=path,
        client_id=headers.get(CLIENT_HEADER, ""),
        timestamp=headers.get(TIMESTAMP_HEADER, ""),
        nonce=headers.get(NONCE_HEADER, ""),
        body_hash=body_sm3,
        signature=headers.get(SIGNATURE_HEADER, ""),
    )


def resource_hash(resource: str) -> Hash32:
    """SM3 of a resource identifier: what the log names instead of the identifier."""
    return sm3(b"lianxin/shared-resource/v1\x00" + resource.encode())


@contextlib.asynccontextmanager
async def gateway_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Start the data gateway with the application (after the registry's own startup),
    and the expiry worker where the registry runs its workers; stop them and the credit
    check log's writer at shutdown."""
    state: RegistryState = app.state.registry
    gateway = DataGateway(state)
    gateway.providers[ARCHIVE_ROOT] = ArchiveProvider(state.db, lambda: archive_service(app))
    app.state.data_gateway = gateway
    # Every credit check is also shown to the subject checked: the credit routes log
    # through this writer, which adds the signed check entry in the same transaction.
    check_log = CheckLogWriter(state.db, CheckTrailWriter(gateway.sharing))
    app.state.credit_check_log = check_log
    gateway.writer.start()
    expiry: asyncio.Task[None] | None = None
    if state.settings.run_workers:
        try:
            lease = expiry_lease(state.db.engine)
        except ValueError:
            logger.warning("no expiry lease for this database: expiries are not recorded")
        else:
            expiry = asyncio.create_task(
                run_expiry_when_leased(gateway.sharing, lease), name="registry-expiry"
            )
    try:
        yield
    finally:
        if expiry is not None:
            expiry.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await expiry
        check_log.stop()
        gateway.writer.stop()


def get_gateway(request: Request) -> DataGateway:
    """The process's data gateway (503 before startup)."""
    gateway: Any = getattr(request.app.state, "data_gateway", None)
    if gateway is None:
        raise ServiceUnavailable("the data gateway is not started", code="stopping")
    assert isinstance(gateway, DataGateway)
    return gateway


__all__ = [
    "DataGateway",
    "archive_service",
    "gateway_lifespan",
    "get_gateway",
    "request_facts",
    "resource_hash",
]
