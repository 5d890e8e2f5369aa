"""Credit reports through the SDK (sync and async) and the CLI: ``report`` issues a report
and returns its PDF (checked against the SM3 the registry issued) with its id and the event
that anchors it; ``verify_report`` says whether PDF bytes are exactly an issued report;
``lianxin credit report SUBJECT -o out.pdf`` writes the PDF, ``report-check`` checks one."""

from __future__ import annotations

import asyncio
import datetime
import json
from pathlib import Path

import httpx
import pytest
from credit_harness import CreditApp, penalties, penalty_file
from fastapi.testclient import TestClient
from registry_harness import CLIENT_KEY
from report_harness import ENTERPRISE_NAME, ENTERPRISE_USCC
from typer.testing import CliRunner

from chain.crypto import PrivateKey, sm3
from registry.credit.cli import app as credit_cli
from sdk.credit_client import AsyncCreditClient, CreditClient, IssuedReport
from sdk.trust_types import RegistryError

CST = datetime.timezone(datetime.timedelta(hours=8))


def _flipped(pdf: bytes) -> bytes:
    """The PDF with one byte of its body changed."""
    middle = len(pdf) // 2
    return pdf[:middle] + bytes([pdf[middle] ^ 0x01]) + pdf[middle + 1 :]


def test_report_returns_the_pdf_and_its_id_and_verify_report_tells_it_from_a_changed_one(
    app: CreditApp,
) -> None:
    app.sdk.import_file(penalty_file(penalties(1)))
    issued = app.sdk.report(ENTERPRISE_USCC, purpose="政府采购投标")
    assert isinstance(issued, IssuedReport)
    assert issued.pdf.startswith(b"%PDF-") and sm3(issued.pdf).hex() == issued.pdf_sm3
    assert issued.content["subject"]["name"] == ENTERPRISE_NAME
    assert issued.verify_url.endswith(f"/credit/reports/{issued.report_id}")
    assert issued.event_id in {event["id"] for event in app.sdk.pending_events()}
    assert app.sdk.report_pdf(issued.report_id) == issued.pdf

    check = app.sdk.verify_report(issued.pdf)
    assert (check.genuine, check.report_id) == (True, issued.report_id)
    assert check.stated is not None and check.stated["subject"]["name"] == ENTERPRISE_NAME
    assert app.sdk.verify_report(issued.pdf, issued.report_id).genuine

    changed = app.sdk.verify_report(_flipped(issued.pdf))
    assert not changed.genuine and changed.pdf_sm3 == sm3(_flipped(issued.pdf)).hex()
    other = app.sdk.report(ENTERPRISE_USCC, purpose="另一用途")
    assert not app.sdk.verify_report(issued.pdf, other.report_id).genuine


def test_report_of_an_earlier_instant_and_typed_errors(app: CreditApp) -> None:
    app.sdk.import_file(penalty_file(penalties(1)))
    earlier = app.sdk.report(ENTERPRISE_USCC, at=datetime.datetime(2023, 5, 2, tzinfo=CST))
    assert earlier.content["as_of"].startswith("2023-05-02")
    with pytest.raises(ValueError, match="time zone"):
        app.sdk.report(ENTERPRISE_USCC, at=datetime.datetime(2023, 5, 2))
    with pytest.raises(RegistryError) as future:
        app.sdk.report(ENTERPRISE_USCC, at=datetime.datetime(2030, 1, 1, tzinfo=CST))
    assert future.value.status_code == 422
    with pytest.raises(RegistryError) as missing:
        app.sdk.report_pdf("00000000-0000-0000-0000-000000000000")
    assert missing.value.status_code == 404


def test_the_async_client_issues_and_verifies_a_report(app: CreditApp) -> None:
    app.sdk.import_file(penalty_file(penalties(1)))

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=app.http.app)
        http = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        client = AsyncCreditClient("http://testserver", app.client_id, CLIENT_KEY, http_client=http)
        async with client:
            issued = await client.report(ENTERPRISE_USCC)
            assert sm3(issued.pdf).hex() == issued.pdf_sm3
            assert (await client.verify_report(issued.pdf)).genuine
            assert not (await client.verify_report(_flipped(issued.pdf))).genuine
            stored = await client.report_json(issued.report_id)
            assert stored["report"]["report_id"] == issued.report_id
            assert stored["pdf_sm3"] == issued.pdf_sm3

    asyncio.run(scenario())


def test_the_cli_writes_the_report_pdf_and_checks_one(
    app: CreditApp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app.sdk.import_file(penalty_file(penalties(1)))
    key_file = tmp_path / "department.pem"
    key_file.write_bytes(CLIENT_KEY.to_pem())
    # The CLI's client talks to the app in process (no server), through a transport of
    # its own that the command may close.
    monkeypatch.setattr(
        "registry.credit.cli._client",
        lambda url, client_id, key_file: CreditClient(
            url,
            client_id,
            PrivateKey.from_pem(key_file.read_bytes()),
            http_client=TestClient(app.http.app),
            retries=0,
        ),
    )
    output = tmp_path / "out.pdf"
    options = ["--client-id", app.client_id, "--key-file", str(key_file)]
    runner = CliRunner()
    done = runner.invoke(
        credit_cli,
        ["report", ENTERPRISE_USCC, "-o", str(output), "--no-sign", "--json", *options],
    )
    assert done.exit_code == 0, done.output
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert sm3(output.read_bytes()).hex() == summary["pdf_sm3"]
    assert summary["signed_events"] == 0

    genuine = runner.invoke(credit_cli, ["report-check", str(output), *options])
    assert genuine.exit_code == 0, genuine.output
    output.write_bytes(_flipped(output.read_bytes()))
    changed = runner.invoke(credit_cli, ["report-check", str(output), *options])
    assert changed.exit_code == 1
