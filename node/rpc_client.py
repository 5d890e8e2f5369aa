"""A minimal JSON-RPC client for the operator CLI (standard library only; the node never
imports the SDK)."""

from __future__ import annotations

import itertools
import json
import urllib.error
import urllib.request
from typing import Any

_ids = itertools.count(1)


class RpcError(Exception):
    """The node answered with a JSON-RPC error, or could not be reached."""

    def __init__(self, message: str, code: int | None = None, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        """The JSON-RPC error code, or ``None`` when the node was unreachable."""
        self.data = data
        """The error's ``data`` member, if any."""


def rpc_call(url: str, method: str, params: list[Any] | None = None, *, timeout: float = 10) -> Any:
    """Call ``method`` on the node at ``url`` and return its result; raises RpcError."""
    body = json.dumps(
        {"jsonrpc": "2.0", "id": next(_ids), "method": method, "params": params or []}
    ).encode()
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            reply = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise RpcError(f"cannot reach the node at {url}: {exc}") from exc
    if not isinstance(reply, dict):
        raise RpcError(f"unexpected reply from {url}")
    if "error" in reply:
        error = reply["error"]
        raise RpcError(str(error.get("message")), error.get("code"), error.get("data"))
    return reply.get("result")
