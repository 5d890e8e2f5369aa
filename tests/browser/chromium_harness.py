"""Debian's headless Chromium with the network cut (no DNS for anything but the loopback, an
unreachable proxy), as the browser tests drive it: load a page, keep a screenshot, return the
DOM."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
VIEWPORTS = ((390, 844), (1280, 800))
"""A phone and a laptop."""
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
BROWSER_TIMEOUT_S = 120


def chromium(url: str, screenshot: Path, profile: Path, viewport: tuple[int, int]) -> str:
    """Load ``url`` with the network cut; save a screenshot, return the DOM."""
    width, height = viewport
    completed = subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
            "--proxy-server=http://127.0.0.1:9",
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
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


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height
