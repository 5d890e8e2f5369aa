"""The credit check log's writer thread stops with the application: the rows waiting are
committed first, no writer thread outlives the app, and a check after the shutdown is refused
as not logged instead of starting a writer on a closed database."""

from __future__ import annotations

import asyncio
import datetime
import threading

import pytest
from credit_harness import CreditApp
from fastapi.testclient import TestClient

from registry.app import create_app
from registry.credit.check_log import WRITER_THREAD, CheckLogWriter
from registry.credit.models import CreditCheckLog
from registry.errors import ServiceUnavailable
from registry.settings import RegistrySettings
from sdk.credit_client import CreditClient

ENTERPRISE = "91350100M000100Y43"
ON = datetime.date(2023, 7, 1)


def _writer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == WRITER_THREAD and t.is_alive()]


def test_the_check_log_writer_stops_with_the_application(app: CreditApp) -> None:
    settings: RegistrySettings = app.http.app.state.registry.settings  # type: ignore[attr-defined]
    before = set(_writer_threads())
    logged = app.count(CreditCheckLog)
    with TestClient(create_app(settings)) as other:
        state = other.app.state  # type: ignore[attr-defined]
        state.credit_clock = app.clock.now
        state.credit_keys = app.http.app.state.credit_keys  # type: ignore[attr-defined]
        sdk = CreditClient(
            "http://testserver", app.client_id, app.key, http_client=other, retries=0
        )
        assert sdk.check(ENTERPRISE, "government_procurement", ON).decision == "allowed"
        writer: CheckLogWriter = state.credit_check_log
        assert len(set(_writer_threads()) - before) == 1
    assert set(_writer_threads()) - before == set()
    assert app.count(CreditCheckLog) == logged + 1
    with pytest.raises(ServiceUnavailable):
        asyncio.run(writer.append({}))
    assert set(_writer_threads()) - before == set()
