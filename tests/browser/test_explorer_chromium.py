"""The explorer's pages in a real headless Chromium (Debian's ``chromium``), with the network
cut (no DNS for anything but the loopback, an unreachable proxy): every page type at a phone
(390x844) and a laptop (1280x800) viewport, its Chinese text in the DOM and drawn with a
CJK font, screenshots kept under test-artifacts/. The explorer runs as its own process
(``python -m explorer run``) on the explorer tests' shared dev chain."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "explorer"))

from chain_activity import (
    DEPARTMENT_NAME,
    DEPARTMENT_USCC,
    Activity,
    DevChain,
    free_port,
    shared_chain,
)
from chromium_harness import ARTIFACTS, CHROMIUM, VIEWPORTS, chromium, png_size

from sdk.account import Sm2Account

START_SECONDS = 180.0

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium package (/usr/bin/chromium)"
)


@pytest.fixture(scope="module")
def explorer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, DevChain, Activity]]:
    chain, activity = shared_chain()
    folder = tmp_path_factory.mktemp("explorer")
    port = free_port()
    command = [
        sys.executable, "-m", "explorer", "run", "--dir", str(chain.root), "--port", str(port),
        "--database-url", f"sqlite:///{folder / 'explorer.db'}",
    ]  # fmt: skip
    with open(folder / "explorer.log", "wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    base = f"http://127.0.0.1:{port}"
    try:
        head = httpx.post(
            chain.url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber"}
        ).json()
        deadline = time.monotonic() + START_SECONDS
        while True:
            assert process.poll() is None, (folder / "explorer.log").read_text()
            with contextlib.suppress(httpx.HTTPError):
                if _indexed(base, chain, int(head["result"], 16)):
                    break
            assert time.monotonic() < deadline, "the explorer did not come up"
            time.sleep(0.2)
        yield base, chain, activity
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _ticket(base: str, chain: DevChain) -> str:
    account = Sm2Account.from_keystore(chain.keystore("admin"), chain.password)
    with httpx.Client(base_url=base, timeout=30) as client:
        challenge = client.post("/auth/challenge").json()
        answer = client.post(
            "/auth/login",
            data={
                "nonce": challenge["nonce"],
                "public_key": account.public_key_bytes.hex(),
                "signature": account.private_key.sign(challenge["text"].encode()).hex(),
            },
        )
        answer.raise_for_status()
        return str(answer.json()["ticket"])


def _passed_job(base: str, chain: DevChain) -> str:
    """The page of a re-verification job of the whole chain, started from the form and
    waited for until it passed."""
    with httpx.Client(base_url=base, timeout=60) as client:
        client.get(f"/auth/enter?ticket={_ticket(base, chain)}")
        started = client.post("/verify", data={"first": "0"}, follow_redirects=False)
        assert started.status_code == 303, started.text
        path = str(started.headers["location"])
        deadline = time.monotonic() + START_SECONDS
        while (job := client.get(f"{path}.json").json())["state"] == "running":
            assert time.monotonic() < deadline, "the re-verification did not finish"
            time.sleep(0.2)
        assert job["state"] == "passed", job
        return path


def _indexed(base: str, chain: DevChain, head: int) -> bool:
    with httpx.Client(base_url=base, timeout=30) as client:
        client.get(f"/auth/enter?ticket={_ticket(base, chain)}")
        return client.get(f"/block/{head}").status_code == 200


def test_every_page_type_offline_at_phone_and_laptop_sizes(
    explorer: tuple[str, DevChain, Activity], tmp_path: Path
) -> None:
    base, chain, activity = explorer
    assert subprocess.run(["fc-list", ":lang=zh"], capture_output=True, text=True).stdout.strip(), (
        "no CJK font: Chinese would be drawn as boxes"
    )
    pages = {
        "overview": ("/", "最新区块"),
        "blocks": ("/blocks", "区块"),
        "block": ("/block/6", "提交证书"),
        "transaction": (f"/tx/0x{activity.receipts['anchor'].tx_hash.hex()}", "批次上链"),
        "departments": ("/departments", DEPARTMENT_NAME),
        "department": (f"/department/{DEPARTMENT_USCC}", DEPARTMENT_NAME),
        "account": (f"/address/0x{activity.issuer.hex()}", DEPARTMENT_NAME),
        "validators": ("/validators", "签名参与度"),
        "permissions": ("/permissions", "账户冻结状态变更"),
        "record": (f"/record/0x{activity.batch_root.hex()}", "记录撤销"),
        "license": (f"/license/0x{activity.license_hash.hex()}", "证照状态变更"),
        "verify": ("/verify", "链上复核"),
        "verify-job": (_passed_job(base, chain), "通过"),
        "not-found": ("/block/987654321", "未找到"),
    }
    runs = [
        (name, path, text, viewport)
        for name, (path, text) in pages.items()
        for viewport in VIEWPORTS
    ]

    def run(item: tuple[str, str, str, tuple[int, int]]) -> tuple[str, str, Path, tuple[int, int]]:
        name, path, _, viewport = item
        tag = f"{name}-{viewport[0]}x{viewport[1]}"
        url = f"{base}/auth/enter?ticket={_ticket(base, chain)}&next={path}"
        shot = tmp_path / f"{tag}.png"
        return tag, chromium(url, shot, tmp_path / f"profile-{tag}", viewport), shot, viewport

    ARTIFACTS.mkdir(exist_ok=True)
    with ThreadPoolExecutor(
        max_workers=int(os.environ.get("LIANXIN_BROWSER_WORKERS", "3"))
    ) as pool:
        results = list(pool.map(run, runs))
    for (name, _, text, _), (tag, dom, shot, viewport) in zip(runs, results, strict=True):
        assert text in dom, tag
        assert "审计员登录" not in dom or name == "login", f"{tag}: the session was not taken"
        assert png_size(shot) == viewport, tag
        shutil.copy(shot, ARTIFACTS / f"explorer-{tag}.png")
    for viewport in VIEWPORTS:
        tag = f"login-{viewport[0]}x{viewport[1]}"
        login_shot = tmp_path / f"{tag}.png"
        dom = chromium(f"{base}/login", login_shot, tmp_path / f"profile-{tag}", viewport)
        assert "审计员登录" in dom and "lianxin explorer login" in dom
        assert png_size(login_shot) == viewport
        shutil.copy(login_shot, ARTIFACTS / f"explorer-{tag}.png")
