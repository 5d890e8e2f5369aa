"""For any record the registry accepts, the metadata its API returns hashes (RFC 8785
canonical JSON, salted with the record's metadata salt) to the metadata hash committed in
the record's Merkle leaf — and, once anchored, to the one in its proof bundle. Hypothesis
draws the metadata: Unicode names and strings (surrogates aside), integers, floats of every
kind, booleans, null, nested arrays and objects; what has no canonical form (NaN, the
infinities, integers beyond ±(2**53 − 1)) must be refused 422 instead, and so must a string
holding a NUL character (the registry refuses it at its boundary: no record field holds one,
and PostgreSQL cannot store it as text). Runs on SQLite, or on
PostgreSQL with LIANXIN_TEST_DATABASE_URL."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from registry_harness import CLIENT_USCC, signed

from chain.crypto import PrivateKey, sm3
from registry.app import create_app
from registry.cli import add_client
from registry.settings import RegistrySettings
from sdk.canonical import CanonicalJsonError, strict_canonical_json
from sdk.commitments import salted_metadata_hash
from sdk.trust import RegistryError, TrustClient

MAX_EXAMPLES = 25
ANCHOR_TIMEOUT_S = 60.0

TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
SCALARS = st.none() | st.booleans() | st.integers(-(2**60), 2**60) | st.floats() | TEXT
METADATA = st.dictionaries(
    TEXT,
    st.recursive(
        SCALARS,
        lambda children: (
            st.lists(children, max_size=3) | st.dictionaries(TEXT, children, max_size=3)
        ),
        max_leaves=12,
    ),
    max_size=6,
)


class Department:
    """A notarizing client of the test department on the in-process application."""

    def __init__(self, http: TestClient, client_id: str, key: PrivateKey) -> None:
        self.http = http
        self.client_id = client_id
        self.key = key
        self.trust = TrustClient("http://testserver", client_id, key, http_client=http)

    def record_json(self, record_id: str) -> dict[str, Any]:
        """``GET /v1/records/{id}`` as the API answers it."""
        path = f"/v1/records/{record_id}"
        _, headers = signed(self.key, self.client_id, "GET", path)
        answer = self.http.get(path, headers=headers)
        assert answer.status_code == 200, answer.text
        value: dict[str, Any] = answer.json()
        return value


@pytest.fixture
def department(settings: RegistrySettings) -> Iterator[Department]:
    with TestClient(create_app(settings)) as http:
        key = PrivateKey.generate()
        client = add_client(
            http.app.state.registry.db,  # type: ignore[attr-defined]
            name="区行政审批局",
            uscc=CLIENT_USCC,
            public_key_pem=key.public_key.to_pem(),
            roles=["notarize", "verify"],
        )
        yield Department(http, client.id, key)


def holds_nul(value: Any) -> bool:
    """Whether a string anywhere in ``value`` (a key too) holds a NUL character."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(holds_nul(key) or holds_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(holds_nul(item) for item in value)
    return False


def test_returned_metadata_hashes_to_the_committed_and_anchored_hash(
    department: Department,
) -> None:
    accepted: list[tuple[str, bytes]] = []

    @given(metadata=METADATA)
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def accepted_record(metadata: dict[str, Any]) -> None:
        digest = sm3(secrets.token_bytes(16)).hex()
        try:
            strict_canonical_json(metadata)
        except CanonicalJsonError:
            # NaN, an infinity or an integer beyond ±(2**53 − 1): refused, by the SDK
            # before sending (it hashes the metadata itself) or by the registry (422).
            with pytest.raises((RegistryError, CanonicalJsonError)) as refused:
                department.trust.notarize(digest=digest, metadata=metadata)
            if isinstance(refused.value, RegistryError):
                assert refused.value.status_code == 422
            return
        if holds_nul(metadata):
            with pytest.raises(RegistryError) as nul:
                department.trust.notarize(digest=digest, metadata=metadata)
            assert nul.value.status_code == 422
            return
        result = department.trust.notarize(digest=digest, metadata=metadata)
        assert result.metadata_salt is not None
        salt = bytes.fromhex(result.metadata_salt)
        shown = department.record_json(result.record_id)
        assert salted_metadata_hash(shown["metadata"], salt).hex() == shown["metadata_hash"]
        accepted.append((result.record_id, salt))

    accepted_record()
    record_id, salt = accepted[-1]
    deadline = time.monotonic() + ANCHOR_TIMEOUT_S
    while (record := department.trust.get_record(record_id)).bundle is None:
        assert time.monotonic() < deadline, f"record {record_id} not anchored"
        time.sleep(0.2)
    shown = department.record_json(record_id)
    anchored = record.bundle.record.metadata_hash
    assert salted_metadata_hash(shown["metadata"], salt) == anchored
