"""The virus-scan hook of 安全性: a :class:`Scanner` answers per file; :class:`ClamdScanner`
talks to a ClamAV daemon (``clamd``) over its UNIX or TCP socket with the INSTREAM command,
streaming the file in chunks. With no scanner configured the check is NOT_CHECKED, never
PASS."""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

CHUNK = 64 * 1024
"""Bytes per INSTREAM chunk (below clamd's StreamMaxLength chunking)."""


@dataclass(frozen=True)
class ScanResult:
    """A scanner's answer for one file."""

    clean: bool
    """True if nothing was found."""
    detail: str
    """The scanner's words (the signature name when infected)."""


class ScanUnavailable(Exception):
    """The scanner could not be asked (daemon down, timeout)."""


class Scanner(Protocol):
    """Anything that scans a file."""

    @property
    def name(self) -> str:
        """What the scanner is (shown in the evidence)."""
        ...

    def scan(self, path: Path) -> ScanResult:
        """Scan ``path``; raises ScanUnavailable if the scanner cannot answer."""
        ...


@dataclass(frozen=True)
class ClamdScanner:
    """A ClamAV daemon at ``address``: a UNIX socket path, or ``host:port``."""

    address: str
    """Where clamd listens."""
    timeout_s: float = 60.0
    """Per-file answer deadline."""
    name: str = "clamd"

    def _connect(self) -> socket.socket:
        if ":" in self.address and not self.address.startswith("/"):
            host, _, port = self.address.rpartition(":")
            return socket.create_connection((host, int(port)), timeout=self.timeout_s)
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        connection.settimeout(self.timeout_s)
        connection.connect(self.address)
        return connection

    def scan(self, path: Path) -> ScanResult:
        """Stream ``path`` to clamd (``zINSTREAM``) and read its verdict."""
        try:
            with self._connect() as connection, path.open("rb") as stream:
                connection.sendall(b"zINSTREAM\x00")
                while chunk := stream.read(CHUNK):
                    connection.sendall(struct.pack(">I", len(chunk)) + chunk)
                connection.sendall(struct.pack(">I", 0))
                answer = b""
                while not answer.endswith(b"\x00"):
                    part = connection.recv(4096)
                    if not part:
                        break
                    answer += part
        except OSError as exc:
            raise ScanUnavailable(f"clamd at {self.address}: {exc}") from exc
        text = answer.rstrip(b"\x00").decode("utf-8", "replace")
        if text.endswith("OK"):
            return ScanResult(clean=True, detail=text)
        if text.endswith("FOUND"):
            return ScanResult(clean=False, detail=text)
        raise ScanUnavailable(f"clamd answered {text!r}")


__all__ = ["ClamdScanner", "ScanResult", "ScanUnavailable", "Scanner"]
