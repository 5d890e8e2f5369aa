"""Each archive client method made of more than one request, written once, without I/O,
as a program of steps that :class:`sdk.archive_client.ArchiveClient` runs and
:class:`sdk.archive_client_async.AsyncArchiveClient` awaits.

A program is a generator: it yields a step (a :class:`Call` of :mod:`sdk.archive_calls`,
reading a bag, streaming an upload, the chain id records are signed for, a download, a
pause), is sent what the step gave, or has the step's error thrown in at the ``yield``,
and returns the method's result. The clients only carry out steps: send and sleep,
blocking or awaited. :func:`run_steps` is the whole loop for a synchronous client."""

from __future__ import annotations

import contextlib
import datetime
import shutil
import tarfile
import tempfile
from collections.abc import Awaitable, Callable, Generator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from chain.crypto import PrivateKey
from sdk.archive_calls import (
    UPLOAD_USED_UP,
    AuditState,
    BagRejected,
    FilePage,
    Package,
    PackageFile,
    PackageNotFound,
    StoredVersion,
    approval_json,
    audit_call,
    audit_request_call,
    destroyed_roots,
    dip_request,
    disposal_call,
    files_call,
    ingest_call,
    migration_call,
    package_call,
    report_call,
    report_pdf_request,
    require_roots,
    stored_already,
)
from sdk.archive_entries import (
    BagContents,
    BagNotReadable,
    bag_kind,
    read_bag_contents,
    sign_disposal,
    sign_entries,
)
from sdk.archive_upload import Progress
from sdk.trust_core import Call, RegistryRequest

_T = TypeVar("_T")


# -- steps -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Local:
    """Work on this machine's disk and CPU (reading and hashing a bag): called as it is by
    the synchronous client, in a worker thread by the async one."""

    function: Callable[..., Any]
    """What to call."""
    arguments: tuple[Any, ...] = ()
    """With these."""


@dataclass(frozen=True)
class SigningChainId:
    """The chain id records are signed for (asked of the registry once)."""


@dataclass(frozen=True)
class SendBag:
    """Stream a bag to the archive's spool: gives the :class:`sdk.archive_calls.Upload`."""

    bag: Path
    """A directory, zip or tar."""
    progress: Progress | None = None
    """Told ``(sent, total)`` after each block."""


@dataclass(frozen=True)
class Fetch:
    """A request whose successful answer is taken as it comes: its bytes, or written to
    ``target`` block by block (then the step gives ``target``)."""

    request: RegistryRequest
    """What to send."""
    target: Path | None = None
    """Where to write the answer (None: give its bytes)."""


@dataclass(frozen=True)
class Pause:
    """Wait ``seconds`` (then the step gives the monotonic clock's reading)."""

    seconds: float
    """How long."""


@dataclass(frozen=True)
class Clock:
    """The monotonic clock's reading."""


Step = Call[Any] | Local | SigningChainId | SendBag | Fetch | Pause | Clock
"""What a program asks its client to do."""

Steps = Generator[Step, Any, _T]
"""A program: yields steps, is sent their results, returns the method's result."""


def run_steps(steps: Steps[_T], carry_out: Callable[[Step], Any]) -> _T:
    """Run a program, each step by ``carry_out`` (blocking); an exception of a step is
    thrown into the program, which may handle it."""
    reply: Any = None
    error: Exception | None = None
    while True:
        try:
            step = steps.send(reply) if error is None else steps.throw(error)
        except StopIteration as stop:
            result: _T = stop.value
            return result
        reply, error = None, None
        try:
            reply = carry_out(step)
        except Exception as exc:  # handed to the program, re-raised there unless handled
            error = exc


async def run_steps_async(steps: Steps[_T], carry_out: Callable[[Step], Awaitable[Any]]) -> _T:
    """:func:`run_steps` with each step awaited."""
    reply: Any = None
    error: Exception | None = None
    while True:
        try:
            step = steps.send(reply) if error is None else steps.throw(error)
        except StopIteration as stop:
            result: _T = stop.value
            return result
        reply, error = None, None
        try:
            reply = await carry_out(step)
        except Exception as exc:  # handed to the program, re-raised there unless handled
            error = exc


# -- what the methods share ------------------------------------------------------------------


@contextlib.contextmanager
def sendable(bag: Path) -> Iterator[Path]:
    """The bag as one file to stream: a zip or tar as it is, a directory packed into a tar
    in a scratch directory (removed after)."""
    if bag_kind(bag) != "directory":
        yield bag
        return
    scratch = Path(tempfile.mkdtemp(prefix="lianxin-bag-"))
    try:
        packed = scratch / "bag.tar"
        with tarfile.open(packed, "w") as archive:
            archive.add(bag, arcname=bag.name or "bag")
        yield packed
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def records_for(
    key: PrivateKey, contents: BagContents, chain_id: int, version: int
) -> dict[str, Any]:
    """The department's signed records of ``contents`` as ``version`` of its package."""
    entries = [(entry.path, entry.sm3) for entry in contents.entries]
    return sign_entries(key, chain_id, contents.package_id, version, entries)


def check_migrated(contents: BagContents, package_id: str) -> None:
    """Raise BagNotReadable unless the migrated bag describes ``package_id``."""
    if contents.package_id != package_id:
        raise BagNotReadable(
            f"the migrated bag describes package {contents.package_id}, not {package_id}"
        )


# -- programs --------------------------------------------------------------------------------


def stored_by_a_lost_attempt(
    error: BagRejected, package_id: str, version: int, root: str
) -> Steps[StoredVersion]:
    """An ingest or migration retried after its answer was lost finds its upload used up:
    the version that attempt stored, if the package holds it with ``root``; else
    ``error``."""
    if error.code != UPLOAD_USED_UP:
        raise error
    try:
        package: Package = yield package_call(package_id)
    except PackageNotFound:
        raise error from None
    if not any(v.version == version and v.root == root for v in package.versions):
        raise error
    report = yield report_call(package_id, version)
    stored = stored_already(package, version, root, report)
    if stored is None:
        raise error
    return stored


def ingest_steps(key: PrivateKey, bag: Path, progress: Progress | None) -> Steps[StoredVersion]:
    """:meth:`ArchiveClient.ingest`."""
    contents: BagContents = yield Local(read_bag_contents, (bag,))
    records = records_for(key, contents, (yield SigningChainId()), 1)
    upload = yield SendBag(bag, progress)
    try:
        stored: StoredVersion = yield ingest_call(upload.upload_id, records)
    except BagRejected as error:
        return (yield from stored_by_a_lost_attempt(error, contents.package_id, 1, contents.root))
    return stored


def migration_steps(
    key: PrivateKey,
    package_id: str,
    bag: Path,
    *,
    tool: str,
    tool_version: str,
    parameters: Mapping[str, str | int | bool],
    progress: Progress | None,
) -> Steps[StoredVersion]:
    """:meth:`ArchiveClient.migrate`."""
    contents: BagContents = yield Local(read_bag_contents, (bag,))
    check_migrated(contents, package_id)
    package: Package = yield package_call(package_id)
    version = package.latest.version + 1
    records = records_for(key, contents, (yield SigningChainId()), version)
    upload = yield SendBag(bag, progress)
    call = migration_call(
        package_id,
        upload.upload_id,
        records,
        tool=tool,
        tool_version=tool_version,
        parameters=parameters,
    )
    try:
        stored: StoredVersion = yield call
    except BagRejected as error:
        return (yield from stored_by_a_lost_attempt(error, package_id, version, contents.root))
    return stored


def disposal_steps(
    key: PrivateKey,
    package_id: str,
    *,
    approval_id: str,
    approved_by: str,
    approved_at: datetime.datetime,
    reason: str,
) -> Steps[dict[str, Any]]:
    """:meth:`ArchiveClient.dispose`."""
    approval = approval_json(approval_id, approved_by, approved_at, reason)
    roots = destroyed_roots((yield package_call(package_id)))
    require_roots(roots)
    records = sign_disposal(key, (yield SigningChainId()), package_id, approval, roots)
    tombstone: dict[str, Any] = yield disposal_call(package_id, approval, records)
    return tombstone


def custody_steps(package_id: str) -> Steps[list[dict[str, Any]]]:
    """:meth:`ArchiveClient.custody`."""
    package: Package = yield package_call(package_id)
    return package.events


def report_pdf_steps(package_id: str, version: int | None) -> Steps[bytes]:
    """:meth:`ArchiveClient.report_pdf`."""
    pdf: bytes = yield Fetch(report_pdf_request(package_id, version))
    return pdf


def dip_steps(package_id: str, target: Path, purpose: str, version: int | None) -> Steps[Path]:
    """:meth:`ArchiveClient.export_dip`."""
    written: Path = yield Fetch(dip_request(package_id, purpose, version), target)
    return written


def audit_wait_steps(
    package_id: str, audit_id: str, *, timeout: float, poll: float
) -> Steps[AuditState]:
    """:meth:`ArchiveClient.wait_for_audit`: the audit read every ``poll`` seconds until it
    is finished or failed; TimeoutError after ``timeout`` seconds."""
    if timeout <= 0 or poll <= 0:
        raise ValueError("timeout and poll are positive seconds")
    deadline = (yield Clock()) + timeout
    while True:
        state: AuditState = yield audit_call(package_id, audit_id)
        if state.settled:
            return state
        if (yield Pause(poll)) >= deadline:
            raise TimeoutError(f"audit {audit_id} not finished within {timeout} s")


def audit_package_steps(
    package_id: str, reason: str | None, *, timeout: float, poll: float
) -> Steps[AuditState]:
    """:meth:`ArchiveClient.audit_package`: ask for the audit, then wait for it."""
    state: AuditState = yield audit_request_call(package_id, reason)
    return (yield from audit_wait_steps(package_id, state.audit_id, timeout=timeout, poll=poll))


def all_files_steps(
    package_id: str, *, version: int | None, page_size: int
) -> Steps[list[PackageFile]]:
    """:meth:`ArchiveClient.all_files`: every page of the version's files, in path order
    (the version of the first page, so a migration meanwhile does not mix two)."""
    files: list[PackageFile] = []
    cursor: str | None = None
    while True:
        page: FilePage = yield files_call(
            package_id, version=version, limit=page_size, cursor=cursor
        )
        files.extend(page.files)
        version = page.version
        if page.next_cursor is None:
            return files
        cursor = page.next_cursor


__all__ = [
    "Clock",
    "Fetch",
    "Local",
    "Pause",
    "SendBag",
    "SigningChainId",
    "Step",
    "Steps",
    "all_files_steps",
    "audit_package_steps",
    "audit_wait_steps",
    "check_migrated",
    "custody_steps",
    "dip_steps",
    "disposal_steps",
    "ingest_steps",
    "migration_steps",
    "records_for",
    "report_pdf_steps",
    "run_steps",
    "run_steps_async",
    "sendable",
    "stored_by_a_lost_attempt",
]
