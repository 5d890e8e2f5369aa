"""A 双公示 file streamed to ``POST /v1/credit/imports`` with its SM3 declared: imported
past ``max_upload_bytes`` (which still bounds an import sent whole), bounded by
``max_import_bytes`` (413), refused when it does not hash to the SM3 declared (422), with a
bad signature or a replayed nonce refused before its body is read (401); a refused import
stores nothing and leaves nothing in the registry's spool."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from credit_harness import CreditApp, penalties, penalty_file
from registry_harness import new_client

from chain.crypto import PrivateKey, sm3
from registry.credit.import_upload import SPOOL_DIR
from sdk.credit_client import CreditClient, CreditImportRejected
from sdk.streamed_upload import CONTENT_SM3_HEADER
from sdk.trust_core import signed_headers
from sdk.trust_types import RegistryError

MAX_UPLOAD = 16 * 1024
MAX_IMPORT = 256 * 1024
IMPORT_PATH = "/v1/credit/imports?format=csv&mode=all_or_nothing"


@pytest.fixture
def upload_limits() -> tuple[int, int]:
    return MAX_UPLOAD, MAX_IMPORT


def spool_entries(app: CreditApp) -> list[Path]:
    spool = Path(app.http.app.state.registry.settings.data_dir) / SPOOL_DIR  # type: ignore[attr-defined]
    return list(spool.iterdir()) if spool.exists() else []


def streamed_headers(
    app: CreditApp, declared: bytes, *, nonce: str | None = None
) -> dict[str, str]:
    digest = sm3(declared).hex()
    headers = signed_headers(
        app.key,
        client_id=app.client_id,
        method="POST",
        path=IMPORT_PATH,
        body=b"",
        body_sm3=digest,
        nonce=nonce,
    )
    headers[CONTENT_SM3_HEADER] = digest
    headers["Content-Type"] = "text/csv"
    return headers


def test_a_file_past_the_upload_limit_is_streamed_and_imported(
    app: CreditApp, tmp_path: Path
) -> None:
    data = penalty_file(penalties(120))
    assert MAX_UPLOAD < len(data) < MAX_IMPORT
    with pytest.raises(RegistryError) as whole:
        app.sdk.import_file(data)  # bytes are sent whole, within max_upload_bytes
    assert whole.value.status_code == 413
    assert app.records() == 0
    file = tmp_path / "penalties.csv"
    file.write_bytes(data)
    summary = app.sdk.import_file(file)
    assert (summary.published, summary.unchanged) == (120, 0)
    assert app.records() == 120
    assert app.sdk.import_file(file).unchanged == 120
    assert spool_entries(app) == []


def test_a_streamed_file_with_a_bad_row_imports_nothing_and_reports_it(
    app: CreditApp, tmp_path: Path
) -> None:
    rows = penalties(100)
    rows[70]["code_1"] = "91350100M000100Y44"
    file = tmp_path / "penalties.csv"
    file.write_bytes(penalty_file(rows))
    with pytest.raises(CreditImportRejected) as refused:
        app.sdk.import_file(file)
    (issue,) = refused.value.report["issues"]
    assert (issue["row"], issue["reason"]) == (72, "bad_uscc")
    assert app.records() == 0 and app.events() == 0
    assert spool_entries(app) == []


def test_a_body_that_does_not_hash_to_the_declared_sm3_imports_nothing(app: CreditApp) -> None:
    data = penalty_file(penalties(60))
    other = penalty_file(penalties(61))
    answer = app.http.post(IMPORT_PATH, content=data, headers=streamed_headers(app, other))
    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "body_digest_mismatch"
    assert app.records() == 0 and app.events() == 0
    assert spool_entries(app) == []


def test_a_streamed_file_past_max_import_bytes_gets_413_declared_or_chunked(
    app: CreditApp,
) -> None:
    data = penalty_file(penalties(1_000))
    assert len(data) > MAX_IMPORT
    declared = app.http.post(IMPORT_PATH, content=data, headers=streamed_headers(app, data))
    assert declared.status_code == 413
    assert declared.json()["error"]["code"] == "payload_too_large"

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(data), 32 * 1024):
            yield data[start : start + 32 * 1024]

    chunked = app.http.post(IMPORT_PATH, content=chunks(), headers=streamed_headers(app, data))
    assert chunked.status_code == 413
    assert app.records() == 0 and app.events() == 0
    assert spool_entries(app) == []


def test_a_bad_signature_or_a_replayed_nonce_is_refused_before_the_body(app: CreditApp) -> None:
    data = penalty_file(penalties(60))
    forged = streamed_headers(app, data)
    forged[CONTENT_SM3_HEADER] = sm3(b"something else").hex()  # signed over another SM3
    answer = app.http.post(IMPORT_PATH, content=data, headers=forged)
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "bad_signature"

    headers = streamed_headers(app, data, nonce="c" * 32)
    first = app.http.post(IMPORT_PATH, content=data, headers=headers)
    assert first.status_code == 200, first.text
    replayed = app.http.post(IMPORT_PATH, content=data, headers=headers)
    assert replayed.status_code == 401
    assert app.records() == 60
    assert spool_entries(app) == []


def test_a_client_without_a_publishing_role_is_refused(app: CreditApp, tmp_path: Path) -> None:
    client, key = new_client(
        app.db, ("verify",), key=PrivateKey.generate(), name="只读部门", uscc="91350100M000100Y43"
    )
    outsider = CreditClient("http://testserver", client.id, key, http_client=app.http, retries=0)
    file = tmp_path / "penalties.csv"
    file.write_bytes(penalty_file(penalties(60)))
    with pytest.raises(RegistryError) as refused:
        outsider.import_file(file)
    assert refused.value.status_code == 403
    assert app.records() == 0
    assert spool_entries(app) == []
