"""``CreditClient`` and ``AsyncCreditClient``: public credit through the registry's
``/v1/credit`` API, on the shared request core (:mod:`sdk.trust_core`: every request signed
by the department's key, retried with the same bytes) — import 双公示 files, publish list
entries and credit commitments, correct (publish changed content: a correction with
history), withdraw, stop publishing, list exits, settle commitments, sign the department's
pending events (each is then anchored with the department's own signature: by default one
signature over the Merkle root of all of them, so an import is signed once), repairs,
``check``, profiles, the public search, and credit reports (issue, fetch the PDF, check a
PDF).

Proofs come back as the bundles of notarized records and verify offline through the one
bundle verifier (:func:`sdk.bundle.verify_bundle`, see :func:`verify_proofs`).

The requests are built (and answers parsed) in :mod:`sdk.credit_calls`, shared by both
clients; a subject's own calls (filing its repair) are in :mod:`sdk.credit_subject`.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

from sdk.credit_calls import (
    MAX_EVENTS_PER_SIGNATURE,
    PENDING_PAGE,
    CheckAnswer,
    CreditImportRejected,
    ImportSummary,
    events_of,
    notarized_of,
    objects_of,
    pending_page,
    sign_events,
    sign_events_once,
    verify_proofs,
)
from sdk.credit_calls import check_call as _check_call
from sdk.credit_calls import format_of as _format_of
from sdk.credit_calls import import_call as _import_call
from sdk.credit_calls import json_call as _json_call
from sdk.credit_calls import pending_path as _pending_path
from sdk.credit_calls import profile_payload as _profile_payload
from sdk.credit_calls import read_table as _read
from sdk.credit_calls import record_step as _record_step
from sdk.credit_calls import rejection as _rejection
from sdk.credit_reports import (
    IssuedReport,
    ReportCheck,
    ReportMismatch,
    body_of,
    issue_call,
    issued,
    pdf_request,
    report_payload,
    verify_report_call,
)
from sdk.json_shapes import json_object
from sdk.record_calls import chain_id_call
from sdk.streamed_upload import StreamedBody
from sdk.trust import TrustClient
from sdk.trust_async import AsyncTrustClient
from sdk.trust_core import Answer, Call, Exchange, RegistryRequest
from sdk.trust_types import RegistryError

__all__ = [
    "AsyncCreditClient",
    "CheckAnswer",
    "CreditClient",
    "CreditImportRejected",
    "ImportSummary",
    "IssuedReport",
    "ReportCheck",
    "ReportMismatch",
    "sign_events",
    "sign_events_once",
    "verify_proofs",
]

_T = TypeVar("_T")


class CreditClient(TrustClient):
    """Synchronous client of ``/v1/credit`` (and of everything :class:`TrustClient` does)."""

    def _attempts(
        self, call: Call[_T], streamed: StreamedBody | None = None
    ) -> tuple[Exchange[_T], Answer | None]:
        exchange = self._exchange(call, streamed)
        last: Answer | None = None
        while (attempt := exchange.next_attempt()) is not None:
            outcome = (
                self._send(attempt) if streamed is None else self._send_streamed(attempt, streamed)
            )
            if isinstance(outcome, Answer):
                last = outcome
            exchange.receive(outcome)
        return exchange, last

    def _run_keeping(self, call: Call[_T], streamed: StreamedBody | None = None) -> _T:
        exchange, last = self._attempts(call, streamed)
        try:
            return exchange.result()
        except RegistryError as error:
            raise _rejection(error, last) from None

    def _run_bytes(self, request: RegistryRequest) -> bytes:
        return body_of(*self._attempts(Call(request, lambda value: value)))

    def report(
        self,
        subject: str,
        *,
        subject_name: str = "",
        at: datetime.datetime | None = None,
        purpose: str = "",
        kind: str = "special",
    ) -> IssuedReport:
        """Issue a credit report of ``subject`` (USCC or resident ID) as of ``at`` (default
        now) and fetch its PDF. Its SM3 is anchored once the department signs the
        report's event (:meth:`sign_pending`). Raises RegistryError (ReportMismatch when
        the PDF served is not the one issued)."""
        payload = report_payload(subject, subject_name, at, purpose, kind)
        answer = self._run(issue_call(payload))
        return issued(answer, self.report_pdf(str(answer["report_id"])))

    def report_pdf(self, report_id: str) -> bytes:
        """The PDF of an issued report, as issued."""
        return self._run_bytes(pdf_request(report_id))

    def report_json(self, report_id: str) -> dict[str, Any]:
        """The report's content with the proof bundles that verify it offline."""
        path = f"/reports/{quote(report_id)}"
        return self._run(_json_call("GET", path, parse=json_object))

    def verify_report(self, pdf: bytes, report_id: str | None = None) -> ReportCheck:
        """Whether ``pdf`` is exactly an issued report (with ``report_id``: that one) and
        what it stated."""
        return self._run(verify_report_call(pdf, report_id))

    def credit_chain_id(self) -> int:
        """The chain id the department's signatures are for (asked once)."""
        if self.chain_id is None:
            self.chain_id = self._run(chain_id_call())
        return self.chain_id

    def import_file(
        self,
        file: Path | bytes,
        *,
        table_format: str | None = None,
        mode: str = "all_or_nothing",
        rule_set: str | None = None,
    ) -> ImportSummary:
        """Import a 双公示 CSV or XLSX file. A file on disk is streamed (its SM3 declared,
        so the registry writes it to disk as it arrives, up to its ``max_import_bytes``);
        bytes are sent whole (up to ``max_upload_bytes``). Raises CreditImportRejected (with
        the report) when an all-or-nothing import finds any problem."""
        body = _read(file)
        call = _import_call(body, _format_of(file, table_format), mode, rule_set)
        return self._run_keeping(call, body if isinstance(body, StreamedBody) else None)

    def publish_list_entry(self, entry: Mapping[str, Any]) -> list[str]:
        """Enter a subject into a list (``ListEntryCreate`` JSON); the events to sign."""
        return self._run(_json_call("POST", "/list-entries", dict(entry), events_of))

    def publish_commitment(self, commitment: Mapping[str, Any]) -> list[str]:
        """Publish a credit commitment (``CommitmentCreate`` JSON); the events to sign."""
        return self._run(_json_call("POST", "/commitments", dict(commitment), events_of))

    def withdraw(self, record_id: str, reason: str) -> list[str]:
        """The decision was overturned: display stops."""
        return self._run(_record_step(record_id, "withdraw", {"reason": reason}))

    def stop_publishing(self, record_id: str, reason: str) -> list[str]:
        """Stop the record's public display now."""
        return self._run(_record_step(record_id, "stop", {"reason": reason}))

    def exit_list(self, record_id: str, exit_date: datetime.date, reason: str) -> list[str]:
        """The subject leaves the list of entry ``record_id``."""
        payload = {"exit_date": exit_date.isoformat(), "reason": reason}
        return self._run(_record_step(record_id, "list-exit", payload))

    def settle_commitment(self, record_id: str, status: str, reason: str) -> list[str]:
        """A pending commitment is ``fulfilled`` or ``broken``."""
        return self._run(_record_step(record_id, "settle", {"status": status, "reason": reason}))

    def pending_events(
        self, limit: int = PENDING_PAGE, *, after: str | None = None
    ) -> list[dict[str, Any]]:
        """The client's events waiting for its signature, oldest first (after the event
        ``after``: the next page)."""
        return self._run(_json_call("GET", _pending_path(limit, after), parse=pending_page))

    def _pending_upto(self, count: int) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        while len(events) < count:
            after = events[-1]["id"] if events else None
            page = self.pending_events(min(PENDING_PAGE, count - len(events)), after=after)
            events.extend(page)
            if len(page) < PENDING_PAGE:
                break
        return events

    def sign_pending(
        self, progress: Callable[[int], None] | None = None, *, per_event: bool = False
    ) -> dict[str, str]:
        """Sign every pending event with the department's key and hand them to the
        anchoring pipeline; event id → notarized record id. By default ONE signature
        covers all of them (over the Merkle root of their commitments; one per
        :data:`MAX_EVENTS_PER_SIGNATURE` events), so an import is signed once;
        ``per_event`` signs each event alone. ``progress`` is told how many are signed so
        far."""
        notarized: dict[str, str] = {}
        batch = PENDING_PAGE if per_event else MAX_EVENTS_PER_SIGNATURE
        while events := self._pending_upto(batch):
            chain_id = self.credit_chain_id()
            body = (
                {"signatures": sign_events(self._key, chain_id, events)}
                if per_event
                else sign_events_once(self._key, chain_id, events)
            )
            signed = self._run(_json_call("POST", "/events/signatures", body, notarized_of))
            notarized.update(signed)
            if progress is not None:
                progress(len(notarized))
        return notarized

    def apply_repair(
        self, record_id: str, subject: str, evidence: str, *, obligations_fulfilled: bool
    ) -> dict[str, Any]:
        """File a subject's repair application; its state as the subject sees it."""
        payload = {
            "record_id": record_id,
            "subject": subject,
            "evidence": evidence,
            "obligations_fulfilled": obligations_fulfilled,
        }
        return self._run(_json_call("POST", "/repairs", payload, json_object))

    def decide_repair(self, application_id: str, *, approve: bool, reason: str) -> dict[str, Any]:
        """Approve (display stops at once) or reject an application."""
        path = f"/repairs/{quote(application_id)}/decision"
        body = {"approve": approve, "reason": reason}
        return self._run(_json_call("POST", path, body, json_object))

    def overdue_repairs(self) -> list[dict[str, Any]]:
        """Applications undecided past their deadline."""
        return self._run(_json_call("GET", "/repairs/overdue", parse=objects_of))

    def check(self, subject: str, activity: str, on: datetime.date) -> CheckAnswer:
        """allowed / restricted / favoured, with every reason and its proof bundle."""
        return self._run(_check_call(subject, activity, on))

    def public_profile(self, subject: str, at: datetime.datetime | None = None) -> Any:
        """What the public sees of ``subject`` at ``at`` (default now)."""
        return self._run(_json_call("POST", "/profiles/public", _profile_payload(subject, at)))

    def authority_profile(self, subject: str, at: datetime.datetime | None = None) -> Any:
        """Everything on file about ``subject``, with history."""
        payload = _profile_payload(subject, at)
        return self._run(_json_call("POST", "/profiles/authority", payload))

    def record_proof(self, record_id: str) -> Any:
        """The record's latest anchored event and its proof bundle."""
        return self._run(_json_call("GET", f"/records/{quote(record_id)}/proof"))

    def search(self, text: str) -> list[dict[str, Any]]:
        """Subjects with records on public display, by name or USCC."""
        return self._run(_json_call("GET", f"/search?{urlencode({'q': text})}", parse=objects_of))


class AsyncCreditClient(AsyncTrustClient):
    """The same client on ``httpx.AsyncClient``."""

    async def _attempts(
        self, call: Call[_T], streamed: StreamedBody | None = None
    ) -> tuple[Exchange[_T], Answer | None]:
        exchange = self._exchange(call, streamed)
        last: Answer | None = None
        while (attempt := exchange.next_attempt()) is not None:
            outcome = await (
                self._send(attempt) if streamed is None else self._send_streamed(attempt, streamed)
            )
            if isinstance(outcome, Answer):
                last = outcome
            exchange.receive(outcome)
        return exchange, last

    async def _run_keeping(self, call: Call[_T], streamed: StreamedBody | None = None) -> _T:
        exchange, last = await self._attempts(call, streamed)
        try:
            return exchange.result()
        except RegistryError as error:
            raise _rejection(error, last) from None

    async def _run_bytes(self, request: RegistryRequest) -> bytes:
        return body_of(*await self._attempts(Call(request, lambda value: value)))

    async def report(
        self,
        subject: str,
        *,
        subject_name: str = "",
        at: datetime.datetime | None = None,
        purpose: str = "",
        kind: str = "special",
    ) -> IssuedReport:
        """As :meth:`CreditClient.report`."""
        payload = report_payload(subject, subject_name, at, purpose, kind)
        answer = await self._run(issue_call(payload))
        return issued(answer, await self.report_pdf(str(answer["report_id"])))

    async def report_pdf(self, report_id: str) -> bytes:
        """As :meth:`CreditClient.report_pdf`."""
        return await self._run_bytes(pdf_request(report_id))

    async def report_json(self, report_id: str) -> dict[str, Any]:
        """As :meth:`CreditClient.report_json`."""
        return await self._run(_json_call("GET", f"/reports/{quote(report_id)}", parse=json_object))

    async def verify_report(self, pdf: bytes, report_id: str | None = None) -> ReportCheck:
        """As :meth:`CreditClient.verify_report`."""
        return await self._run(verify_report_call(pdf, report_id))

    async def credit_chain_id(self) -> int:
        """As :meth:`CreditClient.credit_chain_id`."""
        if self.chain_id is None:
            self.chain_id = await self._run(chain_id_call())
        return self.chain_id

    async def import_file(
        self,
        file: Path | bytes,
        *,
        table_format: str | None = None,
        mode: str = "all_or_nothing",
        rule_set: str | None = None,
    ) -> ImportSummary:
        """As :meth:`CreditClient.import_file`."""
        body = await asyncio.to_thread(_read, file)
        call = _import_call(body, _format_of(file, table_format), mode, rule_set)
        return await self._run_keeping(call, body if isinstance(body, StreamedBody) else None)

    async def publish_list_entry(self, entry: Mapping[str, Any]) -> list[str]:
        """As :meth:`CreditClient.publish_list_entry`."""
        return await self._run(_json_call("POST", "/list-entries", dict(entry), events_of))

    async def publish_commitment(self, commitment: Mapping[str, Any]) -> list[str]:
        """As :meth:`CreditClient.publish_commitment`."""
        return await self._run(_json_call("POST", "/commitments", dict(commitment), events_of))

    async def withdraw(self, record_id: str, reason: str) -> list[str]:
        """As :meth:`CreditClient.withdraw`."""
        return await self._run(_record_step(record_id, "withdraw", {"reason": reason}))

    async def stop_publishing(self, record_id: str, reason: str) -> list[str]:
        """As :meth:`CreditClient.stop_publishing`."""
        return await self._run(_record_step(record_id, "stop", {"reason": reason}))

    async def exit_list(self, record_id: str, exit_date: datetime.date, reason: str) -> list[str]:
        """As :meth:`CreditClient.exit_list`."""
        payload = {"exit_date": exit_date.isoformat(), "reason": reason}
        return await self._run(_record_step(record_id, "list-exit", payload))

    async def settle_commitment(self, record_id: str, status: str, reason: str) -> list[str]:
        """As :meth:`CreditClient.settle_commitment`."""
        payload = {"status": status, "reason": reason}
        return await self._run(_record_step(record_id, "settle", payload))

    async def pending_events(
        self, limit: int = PENDING_PAGE, *, after: str | None = None
    ) -> list[dict[str, Any]]:
        """As :meth:`CreditClient.pending_events`."""
        return await self._run(_json_call("GET", _pending_path(limit, after), parse=pending_page))

    async def _pending_upto(self, count: int) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        while len(events) < count:
            after = events[-1]["id"] if events else None
            page = await self.pending_events(min(PENDING_PAGE, count - len(events)), after=after)
            events.extend(page)
            if len(page) < PENDING_PAGE:
                break
        return events

    async def sign_pending(
        self, progress: Callable[[int], None] | None = None, *, per_event: bool = False
    ) -> dict[str, str]:
        """As :meth:`CreditClient.sign_pending`."""
        notarized: dict[str, str] = {}
        batch = PENDING_PAGE if per_event else MAX_EVENTS_PER_SIGNATURE
        while events := await self._pending_upto(batch):
            chain_id = await self.credit_chain_id()
            body = (
                {"signatures": sign_events(self._key, chain_id, events)}
                if per_event
                else sign_events_once(self._key, chain_id, events)
            )
            call = _json_call("POST", "/events/signatures", body, notarized_of)
            signed = await self._run(call)
            notarized.update(signed)
            if progress is not None:
                progress(len(notarized))
        return notarized

    async def apply_repair(
        self, record_id: str, subject: str, evidence: str, *, obligations_fulfilled: bool
    ) -> dict[str, Any]:
        """As :meth:`CreditClient.apply_repair`."""
        payload = {
            "record_id": record_id,
            "subject": subject,
            "evidence": evidence,
            "obligations_fulfilled": obligations_fulfilled,
        }
        return await self._run(_json_call("POST", "/repairs", payload, json_object))

    async def decide_repair(
        self, application_id: str, *, approve: bool, reason: str
    ) -> dict[str, Any]:
        """As :meth:`CreditClient.decide_repair`."""
        path = f"/repairs/{quote(application_id)}/decision"
        payload = {"approve": approve, "reason": reason}
        return await self._run(_json_call("POST", path, payload, json_object))

    async def overdue_repairs(self) -> list[dict[str, Any]]:
        """As :meth:`CreditClient.overdue_repairs`."""
        return await self._run(_json_call("GET", "/repairs/overdue", parse=objects_of))

    async def check(self, subject: str, activity: str, on: datetime.date) -> CheckAnswer:
        """As :meth:`CreditClient.check`."""
        return await self._run(_check_call(subject, activity, on))

    async def public_profile(self, subject: str, at: datetime.datetime | None = None) -> Any:
        """As :meth:`CreditClient.public_profile`."""
        payload = _profile_payload(subject, at)
        return await self._run(_json_call("POST", "/profiles/public", payload))

    async def authority_profile(self, subject: str, at: datetime.datetime | None = None) -> Any:
        """As :meth:`CreditClient.authority_profile`."""
        payload = _profile_payload(subject, at)
        return await self._run(_json_call("POST", "/profiles/authority", payload))

    async def record_proof(self, record_id: str) -> Any:
        """As :meth:`CreditClient.record_proof`."""
        return await self._run(_json_call("GET", f"/records/{quote(record_id)}/proof"))

    async def search(self, text: str) -> list[dict[str, Any]]:
        """As :meth:`CreditClient.search`."""
        path = f"/search?{urlencode({'q': text})}"
        return await self._run(_json_call("GET", path, parse=objects_of))
