"""The explorer's node and registry clients share one TLS context per process (a client per
page request would otherwise read the whole CA bundle each time), and it still verifies
certificates and host names as httpx's default does."""

from __future__ import annotations

import ssl
from pathlib import Path

from chain.crypto import PrivateKey, sm3
from explorer.http_clients import http_client, tls_context
from explorer.node_feed import NodeFeed
from explorer.registry_feed import RegistryAccess, RegistryFeed


def _context_of(client: object) -> ssl.SSLContext:
    context = client._transport._pool._ssl_context  # type: ignore[attr-defined]
    assert isinstance(context, ssl.SSLContext)
    return context


def test_node_and_registry_feeds_use_the_one_shared_context(tmp_path: Path) -> None:
    key_file = tmp_path / "key.pem"
    key_file.write_bytes(PrivateKey.from_bytes(sm3(b"http clients test")).to_pem())
    access = RegistryAccess.from_settings("http://127.0.0.1:9", "client", key_file)
    assert access is not None
    feeds = [RegistryFeed(access), RegistryFeed(access), NodeFeed("http://127.0.0.1:9")]
    try:
        contexts = {id(_context_of(feed._client)) for feed in feeds}
    finally:
        for feed in feeds:
            feed.close()
    assert contexts == {id(tls_context())}


def test_the_shared_context_verifies_like_httpxs_default() -> None:
    context = tls_context()
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.cert_store_stats()["x509_ca"] > 0
    with http_client(5.0) as client:
        assert _context_of(client) is context
