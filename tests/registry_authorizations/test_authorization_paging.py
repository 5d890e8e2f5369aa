"""Every listing of data sharing in pages: a department's authorizations, an enterprise's
own, one authorization's access stream, the accesses to an enterprise's data, and the
citizen's tracker page. Each walk goes over a few hundred entries while new ones are
inserted between its pages, and finds every entry that was there when it began exactly
once (and nothing twice); a cursor that is not one of the listing's, or a limit out of
bounds, is refused with 422."""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from registry_harness import CLIENT_USCC, TrustChain, registry_settings
from sharing_harness import (
    CITIZEN_ID,
    ENTERPRISE_USCC,
    PURPOSE,
    RECIPIENT_USCC,
    Scenario,
    issue,
    module_database,
    scenario_on,
)

from authorizations.access_log import RequestFacts
from registry.authorizations.access import Attempt
from registry.authorizations.gateway import resource_hash
from registry.authorizations.page import PAGE_SIZE
from registry.authorizations.paging import MAX_LIMIT
from registry.authorizations.schemas import AuthorizationCreate
from registry.authorizations.service import request_authorization
from registry.models import Client
from sdk.data_client import AsyncDataClient, DataClient

ORIGINAL_AUTHORIZATIONS = 240
ORIGINAL_ACCESSES = 300
PAGE_ACCESSES = 210


@pytest.fixture(scope="module")
def scenario(
    trust_chain: TrustChain, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scenario]:
    with module_database() as database_url:
        settings = registry_settings(trust_chain, tmp_path_factory.mktemp("paging"), database_url)
        yield from scenario_on(settings)


def client_of(scenario: Scenario, party: Any) -> DataClient:
    return DataClient(
        "http://testserver", party.client_id, party.key, http_client=scenario.http, retries=0
    )


def terms(subject_kind: str = "enterprise", subject_id: str = ENTERPRISE_USCC) -> dict[str, Any]:
    now = int(time.time())
    return {
        "subject_kind": subject_kind,
        "subject_id": subject_id,
        "controller": CLIENT_USCC,
        "recipient": RECIPIENT_USCC,
        "items": ["license.metadata"],
        "purpose": PURPOSE,
        "legal_basis": "statutory_duty",
        "basis_citation": "《优化营商环境条例》第三十七条",
        "valid_from": now - 60,
        "valid_until": now + 86_400,
    }


def add_authorizations(
    scenario: Scenario, count: int, *, at: float | None = None, **changes: Any
) -> list[str]:
    """``count`` authorizations granted at once (statutory duty), asked for by the
    recipient, all in one second ``at`` when given (ties ordered by id)."""
    sharing = scenario.gateway.sharing
    with scenario.db.read_session() as session:
        client = session.get_one(Client, scenario.recipient.client_id)
        session.expunge(client)
    payload = AuthorizationCreate(**{**terms(), **changes})
    saved = sharing.clock
    if at is not None:
        sharing.clock = lambda: at
    try:
        return [request_authorization(sharing, client, payload).id for _ in range(count)]
    finally:
        sharing.clock = saved


def add_accesses(scenario: Scenario, authorization_id: str, resource: str, count: int) -> list[str]:
    """``count`` allowed reads logged under ``authorization_id`` (in groups, as the
    gateway's writer logs them); returns their record ids in order."""
    gateway = scenario.gateway
    provider = gateway.provider_for("license.metadata")
    assert provider is not None
    commitment = gateway.resource_commitment(provider, authorization_id, resource)
    assert commitment is not None
    record_ids: list[str] = []
    for start in range(0, count, 100):
        attempts = [
            Attempt(
                authorization_id=authorization_id,
                caller_client=scenario.recipient.client_id,
                caller_uscc=RECIPIENT_USCC,
                subject_commitment=commitment,
                item="license.metadata",
                purpose=PURPOSE,
                resource_hash=resource_hash(resource),
                request=RequestFacts(
                    "POST", "/v1/data/read", "c", "0", secrets.token_hex(8), "00", "c2ln"
                ),
            )
            for _ in range(min(100, count - start))
        ]
        decisions = gateway.writer.write(attempts)
        assert {d.outcome for d in decisions} == {"allowed"}
        record_ids.extend(d.receipt.record_id for d in decisions)
    return record_ids


def test_a_departments_authorizations_are_walked_once_each(scenario: Scenario) -> None:
    tied = add_authorizations(scenario, ORIGINAL_AUTHORIZATIONS // 2, at=time.time())
    spread = add_authorizations(scenario, ORIGINAL_AUTHORIZATIONS - len(tied))
    originals = set(tied) | set(spread)
    recipient = client_of(scenario, scenario.recipient)
    seen: list[str] = []
    after: str | None = None
    pages = 0
    while True:
        page = recipient.authorizations_page(limit=37, after=after)
        assert len(page.items) <= 37
        seen.extend(found.id for found in page.items)
        pages += 1
        # Others ask meanwhile, some in the very second of the tied ones.
        add_authorizations(scenario, 2)
        add_authorizations(scenario, 1, at=time.time())
        if page.next is None:
            break
        after = page.next
    assert pages >= ORIGINAL_AUTHORIZATIONS // 37
    assert len(seen) == len(set(seen))
    assert originals <= set(seen)
    # The whole listing, walked by the client, is newest first and has no repeats.
    walked = [found.id for found in recipient.authorizations()]
    assert len(walked) == len(set(walked)) and originals <= set(walked)


def test_an_enterprises_own_authorizations_are_walked_once_each(scenario: Scenario) -> None:
    originals = set(add_authorizations(scenario, 120, at=time.time()))
    enterprise = client_of(scenario, scenario.enterprise)
    seen: list[str] = []
    after: str | None = None
    while True:
        page = enterprise.tracker_authorizations_page(limit=50, after=after)
        seen.extend(found.id for found in page.items)
        add_authorizations(scenario, 3, at=time.time())
        if page.next is None:
            break
        after = page.next
    assert len(seen) == len(set(seen)) and originals <= set(seen)


def test_a_stream_is_walked_in_chain_order_while_it_grows(scenario: Scenario) -> None:
    (authorization_id,) = add_authorizations(scenario, 1)
    originals = add_accesses(scenario, authorization_id, scenario.license_id, ORIGINAL_ACCESSES)
    recipient = client_of(scenario, scenario.recipient)
    walked = []
    after: str | None = None
    while True:
        page = recipient.stream_page(authorization_id, limit=64, after=after)
        walked.extend(page.items)
        add_accesses(scenario, authorization_id, scenario.license_id, 5)
        if page.next is None:
            break
        after = page.next
    positions = [access.receipt.entry["position"] for access in walked]
    assert positions == list(range(len(walked)))
    assert [a.record_id for a in walked[: len(originals)]] == originals
    DataClient.verify_stream(walked)
    # The async client walks the same pages.
    transport = httpx.ASGITransport(app=scenario.http.app)

    async def walk() -> list[str]:
        http = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        party = scenario.recipient
        async with AsyncDataClient(
            "http://testserver", party.client_id, party.key, http_client=http
        ) as department:
            return [access.record_id for access in await department.stream(authorization_id)]

    # (with what was appended after the walk above ended)
    walked_again = asyncio.run(walk())
    assert walked_again[: len(walked)] == [access.record_id for access in walked]
    assert len(walked_again) == len(walked) + 5


def test_the_accesses_to_an_enterprises_data_are_walked_once_each(scenario: Scenario) -> None:
    (authorization_id,) = add_authorizations(scenario, 1)
    originals = set(
        add_accesses(scenario, authorization_id, scenario.license_id, ORIGINAL_ACCESSES)
    )
    enterprise = client_of(scenario, scenario.enterprise)
    seen: list[str] = []
    after: str | None = None
    while True:
        page = enterprise.tracker_accesses_page(limit=45, after=after)
        seen.extend(access.record_id for access in page.items)
        add_accesses(scenario, authorization_id, scenario.license_id, 4)
        if page.next is None:
            break
        after = page.next
    assert len(seen) == len(set(seen))
    assert originals <= set(seen)


def test_the_citizens_tracker_page_is_walked_by_its_links(scenario: Scenario) -> None:
    citizen_license = issue(scenario.http, scenario.controller, CITIZEN_ID, "resident_id")
    grants = set(
        add_authorizations(scenario, PAGE_SIZE + 5, subject_kind="citizen", subject_id=CITIZEN_ID)
    )
    cited = sorted(grants)[0]
    originals = set(add_accesses(scenario, cited, citizen_license, PAGE_ACCESSES))
    session = scenario.identity.post(
        scenario.http, "/v1/tracker/sessions", {"subject_id": CITIZEN_ID}
    ).json()
    first = scenario.http.get(session["path"])
    assert first.status_code == 200
    seen_authorizations = re.findall(r'data-authorization="([0-9a-f-]{36})"', first.text)
    link = _more(first.text, "authorizations")
    while link is not None:
        page = scenario.http.get(link).text
        seen_authorizations.extend(re.findall(r'data-authorization="([0-9a-f-]{36})"', page))
        link = _more(page, "authorizations")
    assert len(seen_authorizations) == len(set(seen_authorizations))
    assert grants <= set(seen_authorizations)
    seen_accesses: list[str] = []
    page_text = first.text
    pages = 0
    while True:
        found = re.findall(r'data-access="([0-9a-f-]{36})"', page_text)
        assert len(found) <= PAGE_SIZE
        seen_accesses.extend(found)
        pages += 1
        add_accesses(scenario, cited, citizen_license, 2)
        link = _more(page_text, "accesses")
        if link is None:
            break
        page_text = scenario.http.get(link).text
    assert pages >= PAGE_ACCESSES // PAGE_SIZE
    assert len(seen_accesses) == len(set(seen_accesses))
    assert originals <= set(seen_accesses)
    assert 'data-more="newest"' in page_text


def _more(page: str, listing: str) -> str | None:
    found = re.search(rf'data-more="{listing}" href="([^"]+)"', page)
    return None if found is None else found.group(1).replace("&amp;", "&")


@pytest.mark.parametrize(
    "query",
    [
        "after=bm90LWEtY3Vyc29y",
        "after=%25%25%25",
        f"after={'A' * 300}",
        "limit=0",
        f"limit={MAX_LIMIT + 1}",
    ],
)
def test_a_bad_cursor_or_limit_is_refused(scenario: Scenario, query: str) -> None:
    for path in ("/v1/authorizations", f"/v1/authorizations/{'0' * 36}/accesses"):
        answer = scenario.recipient.get(scenario.http, f"{path}?{query}")
        assert answer.status_code in (404, 422), answer.text
        if path == "/v1/authorizations":
            assert answer.status_code == 422
    answer = scenario.enterprise.get(scenario.http, f"/v1/tracker/accesses?{query}")
    assert answer.status_code == 422


def test_a_cursor_of_another_listing_is_refused(scenario: Scenario) -> None:
    add_authorizations(scenario, 3)
    recipient = client_of(scenario, scenario.recipient)
    cursor = recipient.authorizations_page(limit=1).next
    assert cursor is not None
    answer = scenario.enterprise.get(scenario.http, f"/v1/tracker/authorizations?after={cursor}")
    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "invalid_cursor"
    same = scenario.recipient.get(scenario.http, f"/v1/authorizations?after={cursor}&limit=1")
    assert same.status_code == 200
