"""A registry (or a proxy before it) that answers success with a body that is not the API's
answer: every client method raises a typed SdkError, MalformedAnswer for a body that is
not JSON at all, and never a KeyError, TypeError or JSONDecodeError of its own; a listing
whose cursor repeats ends with MalformedAnswer instead of looping. A node whose JSON-RPC
results are not the method's answer: ChainReader raises ChainUnavailable (or the ledger's
own typed decoding error for bytes that are hex but not a header).

The bodies are real HTTP answers (httpx's MockTransport stands in for the network only):
bodies that are not JSON, JSON of every other shape, nesting past the decoder's depth,
and objects carrying every member name the SDK reads set to a value of another type."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chain.crypto import PrivateKey, sm3
from chain.errors import ChainError
from sdk.archive_client import ArchiveClient
from sdk.archive_client_async import AsyncArchiveClient
from sdk.chain_reader import ChainReader, ChainUnavailable
from sdk.credit_client import AsyncCreditClient, CreditClient
from sdk.credit_subject import AsyncCreditSubjectClient, CreditSubjectClient
from sdk.data_client import AsyncDataClient, DataClient
from sdk.errors import SdkError
from sdk.trust import TrustClient
from sdk.trust_async import AsyncTrustClient
from sdk.trust_types import MalformedAnswer

SDK = Path(__file__).resolve().parents[2] / "sdk"
MEMBERS = sorted(
    {
        name
        for source in SDK.glob("*.py")
        for name in re.findall(r'(?:\[|get\()"([A-Za-z_]+)"', source.read_text())
    }
)
"""Every member name the SDK reads from a JSON answer."""

NOT_JSON = [b"", b"not json", b"\xff\xfe{", b"{'single': 'quotes'}", b"[" * 200_000]
"""Bodies no JSON decoder takes (the last nests past its depth)."""

OTHER_TYPES: list[Any] = [
    None,
    True,
    0,
    -1,
    2**70,
    1.5,
    "",
    "x",
    "00" * 32,
    [],
    [1],
    ["a"],
    [["a", "b"]],
    {},
    {"a": 1},
    [{}],
]
"""Values of another type than a member's (or the answer's) own."""

SHAPES: list[bytes] = [json.dumps(value).encode() for value in OTHER_TYPES] + [
    json.dumps(wrap({name: value for name in MEMBERS})).encode()
    for value in OTHER_TYPES
    for wrap in (lambda members: members, lambda members: [members])
]
"""JSON bodies of another shape than any answer."""

KEY = PrivateKey.from_bytes(sm3(b"malformed answers test key"))
USCC = "91350100M000100Y43"
DAY = datetime.date(2026, 1, 1)
DIGEST = sm3(b"a document")


class Registry:
    """Answers every request 200 with the body set last."""

    def __init__(self) -> None:
        self.body = b"{}"

    def answer(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=self.body, headers={"Content-Type": "application/json"})


def client(kind: type[Any], registry: Registry) -> Any:
    transport = httpx.MockTransport(registry.answer)
    return kind("http://registry.test", "client-1", KEY, transport=transport, retries=0)


SYNC: dict[str, tuple[type[Any], Callable[[Any], object]]] = {
    "notarize": (TrustClient, lambda c: c.notarize(digest=DIGEST)),
    "notarize_many": (TrustClient, lambda c: c.notarize_many([{"digest": DIGEST}])),
    "get_record": (TrustClient, lambda c: c.get_record("r-1")),
    "revoke_record": (TrustClient, lambda c: c.revoke_record("r-1")),
    "revoke_signed_by": (TrustClient, lambda c: c.revoke_signed_by(department_key=b"\x02" * 33)),
    "department_records": (TrustClient, lambda c: c.department_records(USCC)),
    "verify": (TrustClient, lambda c: c.verify(digest=DIGEST)),
    "license_signing": (TrustClient, lambda c: c.license_signing()),
    "license_status": (TrustClient, lambda c: c.license_status("L-1")),
    "license_token": (TrustClient, lambda c: c.license_token("L-1")),
    "license_bundle": (TrustClient, lambda c: c.license_bundle("L-1")),
    "department_licenses": (TrustClient, lambda c: c.department_licenses(USCC)),
    "suspend_license": (TrustClient, lambda c: c.suspend_license("L-1")),
    "revoke_license": (TrustClient, lambda c: c.revoke_license("L-1", reason=1)),
    "credit.report": (CreditClient, lambda c: c.report(USCC, purpose="approval")),
    "credit.report_json": (CreditClient, lambda c: c.report_json("rep-1")),
    "credit.verify_report": (CreditClient, lambda c: c.verify_report(b"%PDF-1.7", "rep-1")),
    "credit.chain_id": (CreditClient, lambda c: c.credit_chain_id()),
    "credit.import_file": (CreditClient, lambda c: c.import_file(b"a,b\n1,2\n")),
    "credit.publish_list_entry": (CreditClient, lambda c: c.publish_list_entry({})),
    "credit.publish_commitment": (CreditClient, lambda c: c.publish_commitment({})),
    "credit.withdraw": (CreditClient, lambda c: c.withdraw("rec-1", "overturned")),
    "credit.exit_list": (CreditClient, lambda c: c.exit_list("rec-1", DAY, "term ended")),
    "credit.pending_events": (CreditClient, lambda c: c.pending_events()),
    "credit.sign_pending": (CreditClient, lambda c: c.sign_pending()),
    "credit.apply_repair": (
        CreditClient,
        lambda c: c.apply_repair("rec-1", USCC, "paid", obligations_fulfilled=True),
    ),
    "credit.decide_repair": (
        CreditClient,
        lambda c: c.decide_repair("app-1", approve=True, reason="met"),
    ),
    "credit.overdue_repairs": (CreditClient, lambda c: c.overdue_repairs()),
    "credit.check": (CreditClient, lambda c: c.check(USCC, "tendering", DAY)),
    "credit.public_profile": (CreditClient, lambda c: c.public_profile(USCC)),
    "credit.record_proof": (CreditClient, lambda c: c.record_proof("rec-1")),
    "credit.search": (CreditClient, lambda c: c.search("name")),
    "subject.file_own_repair": (
        CreditSubjectClient,
        lambda c: c.file_own_repair(USCC, "rec-1", "paid", obligations_fulfilled=True),
    ),
    "subject.own_repairs": (CreditSubjectClient, lambda c: c.own_repairs()),
    "data.request_authorization": (DataClient, lambda c: c.request_authorization(item="x")),
    "data.authorization": (DataClient, lambda c: c.authorization("a-1")),
    "data.authorizations": (DataClient, lambda c: c.authorizations()),
    "data.revoke": (DataClient, lambda c: c.revoke("a-1")),
    "data.read": (DataClient, lambda c: c.read("a-1", item="i", purpose="p", resource="r")),
    "data.access": (DataClient, lambda c: c.access("acc-1")),
    "data.stream": (DataClient, lambda c: c.stream("a-1")),
    "data.tracker_authorizations": (DataClient, lambda c: c.tracker_authorizations()),
    "data.tracker_accesses": (DataClient, lambda c: c.tracker_accesses()),
    "data.tracker_checks": (DataClient, lambda c: c.tracker_checks()),
    "data.open_tracker_session": (
        DataClient,
        lambda c: c.open_tracker_session("11010519491231002X"),
    ),
    "data.registry_facts": (DataClient, lambda c: c.registry_facts()),
    "archive.package": (ArchiveClient, lambda c: c.package("p-1")),
    "archive.custody": (ArchiveClient, lambda c: c.custody("p-1")),
    "archive.report": (ArchiveClient, lambda c: c.report("p-1")),
    "archive.search": (ArchiveClient, lambda c: c.search(title="x")),
    "archive.health": (ArchiveClient, lambda c: c.health()),
    "archive.request_audit": (ArchiveClient, lambda c: c.request_audit("p-1")),
    "archive.audit": (ArchiveClient, lambda c: c.audit("p-1", "au-1")),
    "archive.files": (ArchiveClient, lambda c: c.files("p-1")),
    "archive.all_files": (ArchiveClient, lambda c: c.all_files("p-1")),
}

ASYNC: dict[str, tuple[type[Any], Callable[[Any], Awaitable[object]]]] = {
    "notarize": (AsyncTrustClient, lambda c: c.notarize(digest=DIGEST)),
    "get_record": (AsyncTrustClient, lambda c: c.get_record("r-1")),
    "license_status": (AsyncTrustClient, lambda c: c.license_status("L-1")),
    "credit.report_json": (AsyncCreditClient, lambda c: c.report_json("rep-1")),
    "credit.publish_list_entry": (AsyncCreditClient, lambda c: c.publish_list_entry({})),
    "credit.sign_pending": (AsyncCreditClient, lambda c: c.sign_pending()),
    "credit.check": (AsyncCreditClient, lambda c: c.check(USCC, "tendering", DAY)),
    "credit.search": (AsyncCreditClient, lambda c: c.search("name")),
    "subject.own_repairs": (AsyncCreditSubjectClient, lambda c: c.own_repairs()),
    "data.authorizations": (AsyncDataClient, lambda c: c.authorizations()),
    "data.read": (
        AsyncDataClient,
        lambda c: c.read("a-1", item="i", purpose="p", resource="r"),
    ),
    "archive.package": (AsyncArchiveClient, lambda c: c.package("p-1")),
    "archive.all_files": (AsyncArchiveClient, lambda c: c.all_files("p-1")),
}


def outcome(call: Callable[[], object]) -> SdkError | None:
    """The SdkError a call raised (None if it returned); any other exception propagates."""
    try:
        call()
    except SdkError as exc:
        return exc
    return None


@pytest.mark.parametrize("name", sorted(SYNC))
def test_not_json_is_a_malformed_answer_and_other_shapes_raise_only_typed_errors(
    name: str,
) -> None:
    kind, method = SYNC[name]
    registry = Registry()
    with client(kind, registry) as sdk:
        for body in NOT_JSON:
            registry.body = body
            assert isinstance(outcome(lambda: method(sdk)), MalformedAnswer), body[:20]
        for body in SHAPES:
            registry.body = body
            outcome(lambda: method(sdk))


@pytest.mark.parametrize("name", sorted(ASYNC))
def test_the_async_clients_raise_the_same_typed_errors(name: str) -> None:
    kind, method = ASYNC[name]
    registry = Registry()

    async def run() -> None:
        sdk = client(kind, registry)
        try:
            for body in NOT_JSON + SHAPES:
                registry.body = body
                try:
                    await method(sdk)
                except MalformedAnswer:
                    pass
                except SdkError:
                    assert body not in NOT_JSON
        finally:
            await sdk.aclose()

    asyncio.run(run())


def members(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(children, max_size=3) | st.dictionaries(
        st.sampled_from(MEMBERS), children, max_size=6
    )


ANSWERS = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | st.sampled_from(["00" * 32, "00" * 33, "2026-01-01", "L-1"]),
    members,
    max_leaves=24,
)
"""JSON values shaped like answers: objects whose members carry the names the SDK reads."""


@pytest.mark.parametrize(
    "name", ["credit.check", "data.read", "archive.package", "get_record", "license_status"]
)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=ANSWERS)
def test_random_answer_shaped_json_raises_only_typed_errors(name: str, value: Any) -> None:
    kind, method = SYNC[name]
    registry = Registry()
    registry.body = json.dumps(value).encode()
    with client(kind, registry) as sdk:
        outcome(lambda: method(sdk))


def test_a_listing_whose_cursor_repeats_ends_as_a_malformed_answer() -> None:
    registry = Registry()
    registry.body = json.dumps({"repairs": [], "next": "same"}).encode()
    with (
        client(CreditSubjectClient, registry) as sdk,
        pytest.raises(MalformedAnswer, match="same cursor twice"),
    ):
        sdk.own_repairs()
    registry.body = json.dumps({"authorizations": [], "next": "same"}).encode()
    with (
        client(DataClient, registry) as sdk,
        pytest.raises(MalformedAnswer, match="same cursor twice"),
    ):
        sdk.authorizations()


def test_a_chain_id_of_another_type_is_refused_not_coerced() -> None:
    registry = Registry()
    with client(CreditClient, registry) as sdk:
        for chain_id in (True, "7", 7.0, -1, 2**64):
            registry.body = json.dumps({"chainId": chain_id}).encode()
            with pytest.raises(MalformedAnswer):
                sdk.credit_chain_id()
        registry.body = json.dumps({"chainId": 7}).encode()
        assert sdk.credit_chain_id() == 7


NODE_MEMBERS = sorted(
    set(re.findall(r'(?:\[|get\()"([A-Za-z_]+)"', (SDK / "chain_reader.py").read_text()))
)
"""Every member name ChainReader reads from a result."""

RESULTS: list[Any] = [
    *OTHER_TYPES,
    "0x",
    "0xzz",
    "0x" + "00" * 31,
    *({name: value for name in NODE_MEMBERS} for value in OTHER_TYPES),
]
"""Results of another shape than any method's answer."""

READS: dict[str, Callable[[ChainReader], object]] = {
    "chain_id": lambda r: r.chain_id(),
    "block_number": lambda r: r.block_number(),
    "send_raw_transaction": lambda r: r.send_raw_transaction(b"\x01"),
    "transaction_receipt": lambda r: r.transaction_receipt(bytes(32)),
    "call": lambda r: r.call(bytes(20), b""),
    "estimate_gas": lambda r: r.estimate_gas(bytes(20), None, b""),
    "get_logs": lambda r: r.get_logs(address=bytes(20)),
    "transaction_proof": lambda r: r.transaction_proof(bytes(32)),
    "receipt_proof": lambda r: r.receipt_proof(bytes(32)),
    "block_header": lambda r: r.block_header(),
    "ruling_set": lambda r: r.ruling_set(),
}


@pytest.mark.parametrize("name", sorted(READS))
def test_a_node_result_of_another_shape_is_chain_unavailable(name: str) -> None:
    results: list[Any] = []

    def answer(request: httpx.Request) -> httpx.Response:
        call = json.loads(request.content)
        return httpx.Response(200, json={"jsonrpc": "2.0", "id": call["id"], **results[-1]})

    with ChainReader("http://node.test", transport=httpx.MockTransport(answer)) as reader:
        for result in RESULTS:
            results.append({"result": result})
            with contextlib.suppress(SdkError, ChainError):
                READS[name](reader)
        for error in ({"code": "x", "message": 1}, {"code": None}, "error"):
            results.append({"error": error})
            with pytest.raises(ChainUnavailable):
                READS[name](reader)
