"""Request signatures as a department sends them: the SDK signs the path the registry
checks (percent-decoded), so identifiers outside ASCII reach their route; and a 401 never
tells whether a client id exists — an unknown id and a bad signature get the same answer,
while the log keeps the real reason. Runs on SQLite, or on PostgreSQL with
LIANXIN_TEST_DATABASE_URL."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

import pytest
from registry_harness import signed
from test_licenses import Registry, make_registry

from chain.crypto import PrivateKey, sm3
from registry.auth import ClientDirectory
from registry.settings import RegistrySettings
from sdk.trust import RegistryError
from sdk.trust_core import signed_path


@pytest.fixture
def registry(settings: RegistrySettings) -> Iterator[Registry]:
    yield from make_registry(settings)


def test_signed_path_is_the_decoded_path_with_the_query_as_sent() -> None:
    assert signed_path("/v1/licenses/%E8%AF%81%E7%85%A7") == "/v1/licenses/证照"
    assert signed_path("/v1/licenses/证照") == "/v1/licenses/证照"
    assert signed_path("/v1/x%20y?a=%20b") == "/v1/x y?a=%20b"


@pytest.mark.parametrize("identifier", ["1.2.156.3005.2.证照.001", "记录 ünïcødé"])
def test_identifiers_outside_ascii_reach_their_route(registry: Registry, identifier: str) -> None:
    client = registry.trust_client()
    with pytest.raises(RegistryError) as license_error:
        client.license_status(identifier)
    assert (license_error.value.status_code, license_error.value.code) == (
        404,
        "license_not_found",
    )
    with pytest.raises(RegistryError) as record_error:
        client.get_record(identifier)
    assert record_error.value.status_code == 404, record_error.value


PAYLOAD = {"digest": sm3(b"uniform 401").hex(), "metadata": {}}


def test_an_unknown_client_id_is_answered_like_a_bad_signature(
    registry: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    unknown_id = str(uuid.uuid4())
    answers = []
    with caplog.at_level(logging.INFO, logger="registry.auth"):
        for key, client_id in (
            (PrivateKey.generate(), registry.client_id),  # a known id, another key
            (registry.key, unknown_id),  # an id no client has
        ):
            body, headers = signed(key, client_id, "POST", "/v1/records", PAYLOAD)
            answer = registry.http.post("/v1/records", content=body, headers=headers)
            answers.append((answer.status_code, answer.json()))
    assert answers[0] == answers[1]
    status, body = answers[0]
    assert status == 401 and body["error"]["code"] == "bad_signature"
    assert unknown_id not in str(body)
    reasons = [record.getMessage() for record in caplog.records]
    assert any("unknown client id" in reason and unknown_id in reason for reason in reasons)
    assert any("bad signature" in reason for reason in reasons)


def test_an_unknown_id_is_remembered_as_long_as_a_known_one(registry: Registry) -> None:
    """A second probe of an id asks the database no more than a known id's does, so its
    speed does not tell whether the id exists either."""
    # A TTL no test run outlasts, so that a loaded machine cannot expire an entry mid-test.
    directory = ClientDirectory(registry.db, ttl=3600.0)
    reads: list[str] = []
    read = directory._read
    directory._read = lambda client_id: reads.append(client_id) or read(client_id)  # type: ignore[method-assign]
    unknown_id = str(uuid.uuid4())
    for _ in range(3):
        assert directory.find(unknown_id) is None
        assert directory.find(registry.client_id) is not None
    assert reads.count(unknown_id) == reads.count(registry.client_id) == 1
