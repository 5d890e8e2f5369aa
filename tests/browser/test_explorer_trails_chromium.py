"""The credit record and archive package pages in a real headless Chromium (Debian's
``chromium``), with the network cut: each at a phone (390x844) and a laptop (1280x800)
viewport, the explorer running as its own process (``python -m explorer run``) on a dev
chain with a real registry process, its Chinese text in the DOM (a CJK font installed to
draw it), every signed event shown as proven and the unsigned one as not on chain yet;
screenshots kept under test-artifacts/."""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlencode

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "explorer"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from registry_activity import (
    ARCHIVAL_CODE,
    AUTHORITY_USCC,
    DECISION,
    RegistryScene,
    free_port,
    registry_scene,
)
from test_explorer_chromium import (
    ARTIFACTS,
    CHROMIUM,
    START_SECONDS,
    VIEWPORTS,
    _ticket,
    chromium,
    png_size,
)

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium package (/usr/bin/chromium)"
)


@pytest.fixture(scope="module")
def explorer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, RegistryScene]]:
    scene = registry_scene()
    chain = scene.chain
    folder = tmp_path_factory.mktemp("explorer-trails")
    port = free_port()
    command = [
        sys.executable, "-m", "explorer", "run", "--dir", str(chain.root), "--port", str(port),
        "--database-url", f"sqlite:///{folder / 'explorer.db'}",
        "--registry-url", scene.registry_url,
        "--registry-client-id", scene.auditor_client_id,
        "--registry-key-file", str(scene.auditor_key_file),
    ]  # fmt: skip
    with open(folder / "explorer.log", "wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    base = f"http://127.0.0.1:{port}"
    head = int(
        httpx.post(chain.url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber"}).json()[
            "result"
        ],
        16,
    )
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            assert process.poll() is None, (folder / "explorer.log").read_text()
            with contextlib.suppress(httpx.HTTPError), httpx.Client(base_url=base) as client:
                client.get(f"/auth/enter?ticket={_ticket(base, chain)}")
                if client.get(f"/block/{head}").status_code == 200:
                    break
            assert time.monotonic() < deadline, "the explorer did not come up"
            time.sleep(0.2)
        yield base, scene
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_credit_and_archive_pages_offline_at_phone_and_laptop_sizes(
    explorer: tuple[str, RegistryScene], tmp_path: Path
) -> None:
    base, scene = explorer
    assert subprocess.run(["fc-list", ":lang=zh"], capture_output=True, text=True).stdout.strip(), (
        "no CJK font: Chinese would be drawn as boxes"
    )
    pages = {
        "credit": (
            "/credit?" + urlencode({"decision": DECISION, "authority": AUTHORITY_USCC}),
            ("信用记录", DECISION, "停止公示", "已证明", "尚未上链"),
        ),
        "archive": (
            "/archive?" + urlencode({"code": ARCHIVAL_CODE}),
            ("档案包", ARCHIVAL_CODE, "接收入库", "格式迁移", "固定性审计", "销毁", "已证明"),
        ),
    }
    ARTIFACTS.mkdir(exist_ok=True)
    for name, (path, texts) in pages.items():
        for viewport in VIEWPORTS:
            tag = f"{name}-{viewport[0]}x{viewport[1]}"
            url = f"{base}/auth/enter?ticket={_ticket(base, scene.chain)}&next={quote(path)}"
            shot = tmp_path / f"{tag}.png"
            dom = chromium(url, shot, tmp_path / f"profile-{tag}", viewport)
            for text in texts:
                assert text in dom, (tag, text)
            verdicts = re.findall(r'data-verdict="([^"]+)"', dom)
            if name == "credit":
                assert verdicts == ["proven"] * len(scene.signed_kinds) + ["pending"] * len(
                    scene.unsigned_kinds
                ), tag
            else:
                assert verdicts and set(verdicts) == {"proven"}, tag
            assert png_size(shot) == viewport, tag
            shutil.copy(shot, ARTIFACTS / f"explorer-{tag}.png")
