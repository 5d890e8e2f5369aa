"""The API documentation pages in a real headless Chromium with the network cut: the
registry runs as a uvicorn process (its own start command) on 127.0.0.1; every other host
fails to resolve, and anything Chromium would still send elsewhere goes to a recording proxy
that answers nothing. Swagger UI (/docs) and ReDoc (/redoc) must render the API, security
scheme included, and the proxy must have seen no request. Screenshots are kept under
test-artifacts/."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from registry_harness import free_port, registry_environment, registry_settings
from test_license_e2e import registry_process

CHROMIUM = Path("/usr/bin/chromium")
WINDOW = (1280, 1600)
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
BROWSER_TIMEOUT_S = 90
VIRTUAL_TIME_BUDGET_MS = 20_000
"""Virtual time Chromium lets pass (loading, scripts, fetching the OpenAPI document)
before it dumps the DOM: it is not wall-clock time, and it stops early when nothing is
pending."""

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium package (/usr/bin/chromium)"
)


BROWSER_SERVICE_HOSTS = frozenset(
    {
        "update.googleapis.com",
        "accounts.google.com",
        "clients2.google.com",
        "content-autofill.googleapis.com",
        "optimizationguide-pa.googleapis.com",
    }
)
"""Hosts Chromium itself calls (component updates, account and clock checks) whatever page
it shows, and which the flags above do not all silence. No page of ours names them; any
other host reaching the proxy means a page tried to load something from outside."""


def _host(request_line: str) -> str:
    """The host of ``CONNECT host:port …`` or ``GET http://host/… …``."""
    target = request_line.split(" ")[1] if " " in request_line else request_line
    target = target.split("://", 1)[-1]
    return target.split("/", 1)[0].rsplit(":", 1)[0]


class RecordingProxy:
    """A TCP listener on 127.0.0.1 standing in for the outside world: it keeps the first
    line of every request it gets (``CONNECT host:443 …`` or ``GET http://…``) and closes."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.requests: list[str] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            with connection:
                connection.settimeout(2)
                try:
                    first = connection.recv(4096).split(b"\r\n", 1)[0]
                except OSError:
                    first = b"(no request line)"
                self.requests.append(first.decode("latin-1"))

    def close(self) -> None:
        # Closing a listening socket does not wake a thread blocked in accept() on Linux;
        # shutting it down does (accept raises EINVAL), so the listener ends at once.
        with contextlib.suppress(OSError):
            self.server.shutdown(socket.SHUT_RDWR)
        self.server.close()
        self._thread.join(timeout=5)
        assert not self._thread.is_alive(), "the recording proxy's listener did not stop"


@pytest.fixture
def proxy() -> Iterator[RecordingProxy]:
    recorder = RecordingProxy()
    try:
        yield recorder
    finally:
        recorder.close()


def chromium_offline(url: str, screenshot: Path, profile: Path, proxy_port: int) -> str:
    """Load ``url`` in headless Chromium with only 127.0.0.1 reachable; save a screenshot
    and return the DOM once scripts have run."""
    width, height = WINDOW
    completed = subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-domain-reliability",
            "--disable-client-side-phishing-detection",
            "--hide-scrollbars",
            "--no-pings",
            "--disable-breakpad",
            "--disable-default-apps",
            "--disable-extensions",
            "--safebrowsing-disable-auto-update",
            "--disable-features=NetworkTimeServiceQuerying,AutofillServerCommunication,"
            "OptimizationHints,MediaRouter,Translate,CertificateTransparencyComponentUpdater,"
            "DialMediaRouteProvider,AccountConsistency,ChromeSignin",
            # Every name but 127.0.0.1 fails to resolve, and what would still go out goes
            # to the recording proxy (loopback is never proxied).
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            f"--proxy-server=http://127.0.0.1:{proxy_port}",
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            f"--virtual-time-budget={VIRTUAL_TIME_BUDGET_MS}",
            f"--screenshot={screenshot}",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=BROWSER_TIMEOUT_S,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    return completed.stdout


def test_swagger_ui_and_redoc_render_offline_from_the_package(
    trust_chain, tmp_path: Path, database_url: str | None, proxy: RecordingProxy
) -> None:
    settings = registry_settings(trust_chain, tmp_path / "registry", database_url)
    ARTIFACTS.mkdir(exist_ok=True)
    with registry_process(
        registry_environment(settings), free_port(), tmp_path / "registry.log"
    ) as base:
        swagger_shot = tmp_path / "swagger.png"
        dom = chromium_offline(f"{base}/docs", swagger_shot, tmp_path / "profile-1", proxy.port)
        assert 'class="swagger-ui' in dom
        assert 'data-path="/v1/records"' in dom and 'data-path="/v1/verify"' in dom
        assert "Authorize" in dom  # the security scheme is declared
        assert swagger_shot.stat().st_size > 10_000
        shutil.copy(swagger_shot, ARTIFACTS / "api-docs-swagger-ui.png")

        redoc_shot = tmp_path / "redoc.png"
        dom = chromium_offline(f"{base}/redoc", redoc_shot, tmp_path / "profile-2", proxy.port)
        assert "Signing requests" in dom and "X-Lianxin-Signature" in dom
        assert "/v1/records" in dom
        assert redoc_shot.stat().st_size > 10_000
        shutil.copy(redoc_shot, ARTIFACTS / "api-docs-redoc.png")
    page_requests = [line for line in proxy.requests if _host(line) not in BROWSER_SERVICE_HOSTS]
    assert page_requests == [], proxy.requests
