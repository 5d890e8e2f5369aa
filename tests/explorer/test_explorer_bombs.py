"""The explorer's trust boundaries (DESIGN.md section 9), from both sides.

Its routes: a URL past the size bound, a body announced past it, a query or path that is not
UTF-8 or holds a control character, heights past the index's BIGINT, nesting and size bombs
in forms and queries, and random query strings on every route — each answered with a typed
error (never a 500), logged, with nothing stored but the access log line (control characters
escaped), and the server answering afterwards.

Its JSON-RPC intake: a malicious node (a real HTTP server in front of the shared dev chain's
node) answering with JSON nested deeper than the bound, an answer larger than the bound,
values of the wrong type anywhere in a real answer (hypothesis), or a forged block — each a
typed error (NodeUnavailable, BlockRefused), nothing indexed from it on, a clear log line,
and a following indexer that keeps running and catches up once the node serves the chain.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from chain_activity import Activity, DevChain
from explorer_client import admin, explorer_client, login
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from explorer import store_schema as t
from explorer.block_check import BlockRefused
from explorer.indexer import Indexer
from explorer.node_feed import NodeFeed, NodeUnavailable
from explorer.settings import settings_for_chain_dir
from explorer.store import Store

Transform = Callable[[list[dict[str, Any]], bytes], bytes]
"""What the malicious node does to a batch: the requests, the honest answer → its answer."""


class EvilNode:
    """A JSON-RPC server passing requests to a real node and answering as ``transform``
    says (honestly while it is None)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.transform: Transform | None = None
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                honest = httpx.post(
                    outer.upstream,
                    content=body,
                    headers={"Content-Type": "application/json"},
                    timeout=30,
                ).content
                requests = json.loads(body)
                requests = requests if isinstance(requests, list) else [requests]
                answer = honest if outer.transform is None else outer.transform(requests, honest)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def evil(audited: tuple[DevChain, Activity]) -> Iterator[EvilNode]:
    node = EvilNode(audited[0].url)
    yield node
    node.close()


def _genesis(chain: DevChain) -> Any:
    return settings_for_chain_dir(chain.root).genesis()


def _cursor(url: str) -> int | None:
    store = Store.open(url)
    try:
        cursor = store.cursor()
        return None if cursor is None else cursor.height
    finally:
        store.close()


def _only(method: str, change: Callable[[Any], Any]) -> Transform:
    """Answer every ``method`` call of a batch with ``change`` of its honest result."""

    def transform(requests: list[dict[str, Any]], honest: bytes) -> bytes:
        answers = json.loads(honest)
        methods = {r["id"]: r["method"] for r in requests}
        for answer in answers if isinstance(answers, list) else [answers]:
            if methods.get(answer.get("id")) == method:
                answer["result"] = change(answer["result"])
        return json.dumps(answers).encode()

    return transform


def _deep(_requests: list[dict[str, Any]], _honest: bytes) -> bytes:
    return b"[" * 100_000 + b"]" * 100_000  # 200 KB: far under the size bound


def _huge(_requests: list[dict[str, Any]], _honest: bytes) -> bytes:
    return json.dumps(["x" * (4 * 1024 * 1024)]).encode()


def _forged(height: int) -> Transform:
    """Block ``height`` served with the certificate of the block before it."""
    previous: dict[str, Any] = {}

    def change(result: Any) -> Any:
        number = int(result["header"]["height"], 16) if "height" in result["header"] else None
        if number == height - 1:
            previous["certificate"] = result["certificate"]
        if number == height and "certificate" in previous:
            result["certificate"] = previous["certificate"]
        return result

    return _only("lianxin_getBlockHeader", change)


@pytest.mark.parametrize(
    ("name", "transform", "refusal"),
    [
        ("deep", _deep, NodeUnavailable),
        ("huge", _huge, NodeUnavailable),
        ("head not a quantity", _only("eth_blockNumber", lambda _r: {"a": [1]}), NodeUnavailable),
        (
            "transactions not a list",
            _only("eth_getBlockByNumber", lambda r: {**r, "transactions": "x"}),
            NodeUnavailable,
        ),
        (
            "transactions of numbers",
            _only("eth_getBlockByNumber", lambda r: {**r, "transactions": [1, 2]}),
            NodeUnavailable,
        ),
        (
            "header not hex",
            _only("lianxin_getBlockHeader", lambda r: {**r, "header": {"encoded": "0xzz"}}),
            NodeUnavailable,
        ),
        (
            "receipt a string",
            _only("eth_getTransactionReceipt", lambda _r: "receipt"),
            NodeUnavailable,
        ),
    ],
)
def test_a_malicious_node_gets_a_typed_error_and_nothing_is_indexed(
    name: str,
    transform: Transform,
    refusal: type[Exception],
    evil: EvilNode,
    audited: tuple[DevChain, Activity],
    index_url: str,
) -> None:
    chain, _ = audited
    store = Store.open(index_url)
    feed = NodeFeed(evil.url, max_answer_bytes=1024 * 1024)
    try:
        indexer = Indexer(store, feed, _genesis(chain), batch_blocks=4)
        indexer.catch_up(stop_at=5)
        evil.transform = transform
        with pytest.raises(refusal):
            indexer.catch_up()
    finally:
        evil.transform = None
        feed.close()
        store.close()
    assert _cursor(index_url) == 5, name


def test_a_forged_block_is_refused_with_nothing_indexed_from_it(
    evil: EvilNode, audited: tuple[DevChain, Activity], index_url: str
) -> None:
    chain, _ = audited
    store = Store.open(index_url)
    feed = NodeFeed(evil.url)
    evil.transform = _forged(7)
    try:
        with pytest.raises(BlockRefused, match="block 7"):
            Indexer(store, feed, _genesis(chain), batch_blocks=50).catch_up()
    finally:
        evil.transform = None
        feed.close()
        store.close()
    assert _cursor(index_url) == 6


def test_a_following_indexer_logs_each_refusal_keeps_running_and_catches_up(
    evil: EvilNode,
    audited: tuple[DevChain, Activity],
    index_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    chain, _ = audited
    caplog.set_level(logging.WARNING, logger="explorer.indexer")
    store = Store.open(index_url)
    feed = NodeFeed(evil.url)
    stop = threading.Event()
    failures: list[BaseException] = []
    indexer = Indexer(store, feed, _genesis(chain), batch_blocks=50)

    def follow() -> None:
        try:
            indexer.follow(should_stop=stop.is_set, poll_seconds=0.05)
        except BaseException as exc:
            failures.append(exc)

    evil.transform = _deep
    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    try:
        _wait(lambda: "levels deep" in caplog.text, "the deep answer logged")
        evil.transform = _forged(7)
        _wait(lambda: "block refused" in caplog.text, "the forged block logged")
        assert thread.is_alive() and not failures
        assert (_cursor(index_url) or 0) <= 6
        evil.transform = None
        head = int(
            httpx.post(
                chain.url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber"}
            ).json()["result"],
            16,
        )
        _wait(lambda: (_cursor(index_url) or 0) >= head, "the indexer caught up")
    finally:
        evil.transform = None
        stop.set()
        thread.join(timeout=30)
        feed.close()
        store.close()
    assert not failures


def _wait(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.text(max_size=20)
    | st.sampled_from(["0x", "0x00", "0x" + "ff" * 33, "0xzz", "-0x1"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def _replace_somewhere(value: Any, position: int, replacement: Any) -> Any:
    """``value`` with its ``position``-th node (depth first, counted modulo the number of
    nodes) replaced by ``replacement``."""
    nodes: list[tuple[Any, Any]] = []

    def walk(node: Any, parent: Any, key: Any) -> None:
        nodes.append((parent, key))
        if isinstance(node, dict):
            for k in list(node):
                walk(node[k], node, k)
        elif isinstance(node, list):
            for i in range(len(node)):
                walk(node[i], node, i)

    walk(value, None, None)
    parent, key = nodes[position % len(nodes)]
    if parent is None:
        return replacement
    parent[key] = replacement
    return value


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    method=st.sampled_from(
        ["eth_getBlockByNumber", "lianxin_getBlockHeader", "eth_getTransactionReceipt"]
    ),
    position=st.integers(min_value=0, max_value=10_000),
    replacement=JSON_VALUES,
)
def test_any_value_of_a_wrong_type_in_a_real_answer_is_a_typed_error_or_changes_nothing(
    method: str,
    position: int,
    replacement: Any,
    evil: EvilNode,
    audited: tuple[DevChain, Activity],
    honest_hashes: dict[int, str],
) -> None:
    chain, _ = audited
    folder = Path(tempfile.mkdtemp(prefix="explorer-bomb-"))
    url = f"sqlite:///{folder / 'index.db'}"
    store = Store.open(url)
    feed = NodeFeed(evil.url)
    evil.transform = _only(method, lambda r: _replace_somewhere(r, position, replacement))
    try:
        with contextlib.suppress(NodeUnavailable, BlockRefused):
            Indexer(store, feed, _genesis(chain), batch_blocks=50).catch_up(stop_at=8)
        with store.read() as c:
            stored = dict(c.execute(select(t.blocks.c.height, t.blocks.c.hash)).all())
    finally:
        evil.transform = None
        feed.close()
        store.close()
        shutil.rmtree(folder, ignore_errors=True)
    # Whatever was indexed is the chain itself: a corrupted value changed nothing stored.
    assert all(honest_hashes[h] == stored[h] for h in stored)
    assert sorted(stored) == list(range(len(stored)))


@pytest.fixture(scope="module")
def honest_hashes(audited: tuple[DevChain, Activity], module_index_url: str) -> dict[int, str]:
    chain, _ = audited
    store = Store.open(module_index_url)
    feed = NodeFeed(chain.url)
    try:
        Indexer(store, feed, _genesis(chain)).catch_up()
        with store.read() as c:
            return dict(c.execute(select(t.blocks.c.height, t.blocks.c.hash)).all())
    finally:
        feed.close()
        store.close()


# -- the routes ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(
    audited: tuple[DevChain, Activity], module_index_url: str, honest_hashes: dict[int, str]
) -> Iterator[TestClient]:
    chain, _ = audited
    with explorer_client(chain, module_index_url) as client:
        assert login(client, admin(chain)).status_code == 200
        yield client


def _counts(client: TestClient) -> dict[str, int]:
    store: Store = client.app.state.store  # type: ignore[attr-defined]
    with store.read() as c:
        return {
            table.name: int(c.execute(select(func.count()).select_from(table)).scalar() or 0)
            for table in t.metadata.sorted_tables
            if table.name != t.accesses.name
        }


def _api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    """The page routes, through the routers the application includes."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):
            yield from _api_routes(route.original_router.routes)


def _paths(client: TestClient, fill: str) -> list[tuple[str, str]]:
    """(method, path) of every route, its path parameters filled with ``fill``."""
    found = []
    for route in _api_routes(client.app.routes):  # type: ignore[attr-defined]
        path = route.path
        for name in route.param_convertors:
            path = path.replace("{" + name + "}", fill)
        for method in sorted(route.methods or ()):
            found.append((method, path))
    return found


REFUSALS = [
    ("GET", "/search?q=" + "[" * 5000, 414),
    ("GET", "/search?q=%00", 400),
    ("GET", "/search?q=%ff%fe", 400),
    ("GET", "/tx/%00", 400),
    ("GET", "/search?" + "&".join(f"a{i}=1" for i in range(50)), 400),
    ("GET", "/blocks?before=" + "9" * 30, 422),
    ("GET", "/permissions?before=-1", 422),
    ("GET", "/validators?first=" + "9" * 25, 422),
    ("GET", "/validators?height=abc", 422),
    ("GET", "/verify/" + "9" * 30, 422),
    ("GET", "/verify/" + "9" * 30 + ".json", 422),
    ("GET", "/credit?decision=" + "x" * 300, 400),
    ("GET", "/credit?decision=a&authority=%0a", 400),
    ("GET", "/archive?code=", 400),
]


@pytest.mark.parametrize(("method", "url", "status"), REFUSALS)
def test_a_malformed_or_oversize_query_gets_a_typed_error_and_stores_nothing(
    method: str,
    url: str,
    status: int,
    served: TestClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="explorer")
    before = _counts(served)
    answer = served.request(method, url)
    assert answer.status_code == status, (url, answer.text[:200])
    if status != 422:  # FastAPI's own refusal names the parameter in its answer
        assert "refused GET" in caplog.text, url
    assert _counts(served) == before
    assert served.get("/healthz").json() == {"status": "ok"}


@pytest.mark.parametrize("path", ["/login", "/auth/login", "/verify", "/auth/challenge"])
def test_a_size_bomb_body_is_refused_before_it_is_read(path: str, served: TestClient) -> None:
    before = _counts(served)
    answer = served.post(
        path,
        content=b"a=" + b"[" * (2 * 1024 * 1024),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 413, answer.text[:200]
    assert answer.json() == {"error": "body_too_large"}
    assert _counts(served) == before


@pytest.mark.parametrize("path", ["/login", "/auth/login", "/verify"])
def test_a_nesting_bomb_under_the_size_bound_in_a_form_is_just_text(
    path: str, served: TestClient
) -> None:
    before = _counts(served)
    bomb = "[" * 3000 + "]" * 3000
    answer = served.post(
        path,
        content=f"nonce={bomb}&public_key={bomb}&signature={bomb}&first={bomb}".encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code in (400, 403), answer.text[:200]
    assert _counts(served) == before


def test_every_route_answers_bombs_in_its_path_without_a_server_error(
    served: TestClient,
) -> None:
    before = _counts(served)
    for fill in ("%00", "[" * 500 + "]" * 500, "x" * 5000, "%ff", "-1", "9" * 40, "..%2f..%2f"):
        for method, path in _paths(served, fill):
            answer = served.request(method, path, follow_redirects=False)
            assert answer.status_code < 500 or answer.status_code in (502, 503), (
                method,
                path[:80],
                answer.status_code,
            )
    assert len(_paths(served, "1")) >= 30
    assert _counts(served) == before
    store: Store = served.app.state.store  # type: ignore[attr-defined]
    with store.read() as c:
        logged = c.execute(select(t.accesses.c.path)).scalars().all()
    assert logged and not any("\x00" in p or "\n" in p for p in logged)


QUERY_NAMES = ["q", "before", "height", "first", "last", "next", "decision", "authority", "code"]


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    route=st.integers(min_value=0, max_value=1000),
    query=st.dictionaries(
        st.sampled_from(QUERY_NAMES) | st.text(max_size=10),
        st.text(max_size=300) | st.integers().map(str),
        max_size=4,
    ),
)
def test_random_queries_on_every_route_never_fail_the_server(
    route: int, query: dict[str, str], served: TestClient
) -> None:
    paths = [(m, p) for m, p in _paths(served, "1") if m == "GET"]
    method, path = paths[route % len(paths)]
    answer = served.request(method, path, params=query, follow_redirects=False)
    assert answer.status_code < 500 or answer.status_code in (502, 503), (
        path,
        query,
        answer.status_code,
    )
