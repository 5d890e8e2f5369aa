"""The HTTP clients the explorer opens to the node and to the registry.

A page that reads the registry (or the node) opens a client for that request. Making an
``httpx.Client`` with its default verification reads the whole CA bundle into a new TLS
context: 0.1-0.3 s of CPU on a busy machine, more than the rest of a credit history page.
The context is made once per process instead and shared (an ``ssl.SSLContext`` may serve
many connections and threads); what it verifies is httpx's default, unchanged.
"""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def tls_context() -> ssl.SSLContext:
    """httpx's default verifying TLS context, made on first use."""
    return httpx.create_ssl_context()


def http_client(timeout: float) -> httpx.Client:
    """A client with ``timeout`` and the shared TLS context."""
    return httpx.Client(timeout=timeout, verify=tls_context())


__all__ = ["http_client", "tls_context"]
