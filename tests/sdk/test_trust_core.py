"""The registry protocol without I/O: an Exchange signs every attempt anew over the same
request, retries only transport failures and 502/503/504 with exponential backoff, and maps
answers to typed results and errors; AnchorWait gives up at its deadline."""

from __future__ import annotations

import base64
import json

import pytest

from chain.crypto import PrivateKey, sm3
from sdk.trust_core import (
    IDEMPOTENCY_HEADER,
    NONCE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    AnchorWait,
    Answer,
    Exchange,
    get_record_call,
    notarize_call,
    request_sign_bytes,
)
from sdk.trust_types import NotarizeResult, RecordResult, RegistryError, RegistryUnavailable

KEY = PrivateKey.from_bytes(sm3(b"trust core test key"))
CLIENT_ID = "6a0c2d1e-7f00-4c55-9e21-000000000003"
NOW = 1_767_225_600.0
ACCEPTED = {
    "id": "0d7c3b2a-1111-4222-8333-444455556666",
    "status": "accepted",
    "digest": sm3(b"doc").hex(),
    "field_hashes": {},
    "salts": {},
}


def new_exchange(retries: int = 3, backoff: float = 0.5) -> Exchange[NotarizeResult]:
    """An exchange of one notarization under a fixed idempotency key."""
    call = notarize_call(
        digest=sm3(b"doc"), document=None, metadata=None, fields=None, idempotency_key="k-1"
    )
    return Exchange(call, client_id=CLIENT_ID, key=KEY, retries=retries, backoff=backoff)


def json_answer(status_code: int, value: object) -> Answer:
    """An answer with a JSON body."""
    return Answer(status_code, "", json.dumps(value).encode())


def test_every_attempt_is_signed_anew_over_the_same_request() -> None:
    exchange = new_exchange()
    attempts = []
    for offset in range(2):
        attempt = exchange.next_attempt(now=NOW + offset)
        assert attempt is not None
        attempts.append(attempt)
        exchange.receive(Answer(503, "Service Unavailable", b""))
    assert attempts[0].request is attempts[1].request
    assert {a.headers[IDEMPOTENCY_HEADER] for a in attempts} == {"k-1"}
    assert len({a.headers[NONCE_HEADER] for a in attempts}) == 2
    for attempt in attempts:
        message = request_sign_bytes(
            method=attempt.request.method,
            path=attempt.request.path,
            client_id=CLIENT_ID,
            timestamp=attempt.headers[TIMESTAMP_HEADER],
            nonce=attempt.headers[NONCE_HEADER],
            body=attempt.request.body,
        )
        KEY.public_key.verify(base64.b64decode(attempt.headers[SIGNATURE_HEADER]), message)


def test_failures_are_retried_with_backoff_then_reported_unavailable() -> None:
    exchange = new_exchange(retries=3, backoff=0.5)
    delays = []
    while (attempt := exchange.next_attempt(now=NOW)) is not None:
        delays.append(attempt.delay)
        exchange.receive(ConnectionError("refused"))
    assert delays == [0.0, 0.5, 1.0, 2.0]
    with pytest.raises(RegistryUnavailable, match="refused"):
        exchange.result()


def test_a_success_after_a_retry_settles_the_call() -> None:
    exchange = new_exchange()
    exchange.next_attempt(now=NOW)
    exchange.receive(Answer(502, "Bad Gateway", b"upstream"))
    exchange.next_attempt(now=NOW)
    exchange.receive(json_answer(202, ACCEPTED))
    assert exchange.next_attempt(now=NOW) is None
    assert exchange.result() == NotarizeResult.from_json(ACCEPTED)


def test_an_error_answer_settles_the_call_with_its_typed_error() -> None:
    exchange = new_exchange()
    exchange.next_attempt(now=NOW)
    error = {"error": {"code": "idempotency_conflict", "message": "other body"}}
    exchange.receive(json_answer(409, error))
    assert exchange.next_attempt(now=NOW) is None
    with pytest.raises(RegistryError) as caught:
        exchange.result()
    assert (caught.value.status_code, caught.value.code) == (409, "idempotency_conflict")
    assert not isinstance(caught.value, RegistryUnavailable)


def test_an_error_answer_without_a_json_body_keeps_its_reason_phrase() -> None:
    exchange = new_exchange()
    exchange.next_attempt(now=NOW)
    exchange.receive(Answer(404, "Not Found", b"<html>gone</html>"))
    with pytest.raises(RegistryError) as caught:
        exchange.result()
    assert (caught.value.code, caught.value.message) == ("http_error", "Not Found")


def test_requests_without_a_body_carry_no_content_type() -> None:
    request = get_record_call(ACCEPTED["id"]).request
    assert (request.method, request.path, request.body) == (
        "GET",
        f"/v1/records/{ACCEPTED['id']}",
        b"",
    )
    assert dict(request.headers) == {}


def test_anchor_wait_ends_when_anchored_or_raises_at_its_deadline() -> None:
    wait = AnchorWait.starting("r-1", timeout=5.0, now=100.0)
    pending = RecordResult("r-1", "accepted", ACCEPTED["digest"], {}, None, None)
    assert wait.done(pending, now=104.0) is False
    with pytest.raises(TimeoutError, match="r-1"):
        wait.done(pending, now=105.0)
