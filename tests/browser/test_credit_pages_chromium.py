"""The public credit pages (信用公示) and a credit report's genuine-check page in a real
headless Chromium at a phone-sized viewport (390x844) with the network cut: only
127.0.0.1 resolves and anything else goes to a recording proxy that must see no request
from the pages. The registry app is served by uvicorn on a real socket in this process
(its credit clock fixed, so the penalties imported are on display; no chain is needed: a
report's anchoring waits for the department's signature). Screenshots are kept under
test-artifacts/."""

from __future__ import annotations

import datetime
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from chromium_harness import ARTIFACTS, CHROMIUM, VIEWPORTS, png_size
from registry_harness import free_port, new_client
from test_api_docs_chromium import (
    BROWSER_SERVICE_HOSTS,
    RecordingProxy,
    _host,
    chromium_offline,
)

_TESTS = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(_TESTS / "credit"))
sys.path.insert(0, str(_TESTS / "registry_credit"))
sys.path.insert(0, str(_TESTS / "registry_credit_reports"))

import test_api_docs_chromium  # noqa: E402
from credit_harness import penalties, penalty_file  # noqa: E402
from report_harness import ENTERPRISE_NAME, ENTERPRISE_USCC  # noqa: E402

from chain.crypto import sm3  # noqa: E402
from registry.app import create_app  # noqa: E402
from registry.credit.keys import CreditKeys  # noqa: E402
from registry.settings import RegistrySettings  # noqa: E402
from sdk.credit_client import CreditClient  # noqa: E402
from sdk.trust_core import Call, json_request  # noqa: E402

VIEWPORT = VIEWPORTS[0]
"""A phone."""

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium package (/usr/bin/chromium)"
)

NOW = datetime.datetime(2023, 6, 1, 9, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=8)))
SERVER_START_TIMEOUT_S = 60


@dataclass
class Served:
    base: str
    report_id: str
    pdf_sm3: str


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The registry app on a real socket with one enterprise's penalties on display and a
    report of it issued."""
    folder = tmp_path_factory.mktemp("credit-pages")
    settings = RegistrySettings(
        data_dir=folder / "registry",
        node_url=f"http://127.0.0.1:{free_port()}",
        run_workers=False,
    )
    app = create_app(settings)
    app.state.credit_clock = lambda: NOW
    app.state.credit_keys = CreditKeys(b"credit page tests: fixed master secret")
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline
            time.sleep(0.05)
        client, key = new_client(app.state.registry.db, ("credit", "verify"))
        with CreditClient(base, client.id, key, retries=0) as sdk:
            sdk.import_file(penalty_file(penalties(3)))
            payload = {"subject": ENTERPRISE_USCC, "purpose": "政府采购投标"}
            issued = sdk._run(
                Call(json_request("POST", "/v1/credit/reports", payload), lambda v: v)
            )
        yield Served(base, issued["report_id"], issued["pdf_sm3"])
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="module")
def offline_browser() -> Iterator[RecordingProxy]:
    """The network-cut Chromium of the API docs test, at the phone viewport; one recording
    proxy for the module (closing one waits for its listener thread)."""
    recorder = RecordingProxy()
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(test_api_docs_chromium, "WINDOW", VIEWPORT)
            yield recorder
    finally:
        recorder.close()
    page_requests = [line for line in recorder.requests if _host(line) not in BROWSER_SERVICE_HOSTS]
    assert page_requests == [], recorder.requests


def _load(url: str, name: str, folder: Path, proxy: RecordingProxy) -> str:
    shot = folder / f"{name}.png"
    dom = chromium_offline(url, shot, folder / f"profile-{name}", proxy.port)
    assert png_size(shot) == VIEWPORT
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(shot, ARTIFACTS / f"{name}-390x844.png")
    return dom


def test_public_search_and_subject_pages_on_a_phone_offline(
    served: Served, offline_browser: RecordingProxy, tmp_path: Path
) -> None:
    dom = _load(f"{served.base}/credit/?q=福州某某", "credit-search", tmp_path, offline_browser)
    assert ENTERPRISE_NAME in dom and "公示中 3 条" in dom
    assert f'href="subjects/{ENTERPRISE_USCC}"' in dom

    dom = _load(
        f"{served.base}/credit/subjects/{ENTERPRISE_USCC}",
        "credit-subject",
        tmp_path,
        offline_browser,
    )
    assert "公示信息（3 条）" in dom
    assert "榕市监罚〔2023〕0号" in dom and "虚假宣传" in dom


def test_report_genuine_check_page_on_a_phone_offline(
    served: Served, offline_browser: RecordingProxy, tmp_path: Path
) -> None:
    page = f"{served.base}/credit/reports/{served.report_id}"
    dom = _load(page, "credit-report", tmp_path, offline_browser)
    assert "信用报告核验" in dom and ENTERPRISE_NAME in dom
    assert "行政处罚记录3条" in dom and "待出具部门签名" in dom

    pdf = httpx.get(f"{page.replace('/credit/', '/v1/credit/')}/pdf").content
    changed = bytearray(pdf)
    changed[len(changed) // 2] ^= 0x01
    dom = _load(
        f"{page}?sm3={sm3(bytes(changed)).hex()}",
        "credit-report-modified",
        tmp_path,
        offline_browser,
    )
    assert "文件与报告不一致" in dom
    assert "报告真实" not in dom


def test_english_pages_on_a_phone_offline(
    served: Served, offline_browser: RecordingProxy, tmp_path: Path
) -> None:
    dom = _load(
        f"{served.base}/credit/?q=福州某某&lang=en", "credit-search-en", tmp_path, offline_browser
    )
    assert '<html lang="en">' in dom and "3 on display" in dom and ENTERPRISE_NAME in dom
    assert f'href="subjects/{ENTERPRISE_USCC}?lang=en"' in dom and 'id="lang-switch"' in dom

    dom = _load(
        f"{served.base}/credit/subjects/{ENTERPRISE_USCC}?lang=en",
        "credit-subject-en",
        tmp_path,
        offline_browser,
    )
    assert "Records on display (3)" in dom and "Administrative penalty" in dom
    assert "榕市监罚〔2023〕0号" in dom and "行政处罚" not in dom

    dom = _load(
        f"{served.base}/credit/reports/{served.report_id}?sm3={served.pdf_sm3}&lang=en",
        "credit-report-en",
        tmp_path,
        offline_browser,
    )
    assert "Genuine report, unchanged" in dom and "Credit report check" in dom
