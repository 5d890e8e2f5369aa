"""The JSON-RPC transport: HTTP ``POST /`` and WebSocket (``GET /ws``, or an upgrade on ``/``)
on one aiohttp server.

Robustness rules: every body and message is parsed by :func:`chain.bounded_json.loads_bounded`,
which measures size and nesting before any recursion. A body above ``max_request_bytes`` is
answered 413 with a -32600 error object (a WebSocket message above it closes the connection),
and a body that does not keep ``rpc_body_idle_timeout_s`` and ``rpc_body_min_rate_bytes_s`` as
it is read closes its connection (:func:`node.rpc.connections.read_body`); JSON nested deeper
than :data:`chain.limits.MAX_RPC_JSON_DEPTH` with -32600; a batch longer than ``max_batch``
with one -32600 error; JSON that does not parse with -32700; anything that is not a JSON-RPC
2.0 request object with -32600. A handler that fails unexpectedly is logged and answered
-32603. Nothing a client sends stops the server.

Who may ask: the ``Host`` header must name one of ``rpc_allowed_hosts`` (or the address the
server is bound to) and an ``Origin``
header, when present, one of ``rpc_allowed_origins`` (both localhost-only by default), else
HTTP 403 with a -32008 body: a web page the operator opens cannot reach the node, even through
DNS rebinding. The methods in :data:`~node.rpc.methods.EXPENSIVE_METHODS` take a token from
the client address's bucket (``rate_limit_per_s``, ``rate_limit_burst``) and answer -32006 when
it is empty.

Over WebSocket, ``eth_subscribe`` accepts ``newHeads`` and ``logs`` (with an optional
``{address, topics}`` filter), at most ``ws_max_subscriptions`` per connection; at most
``ws_max_connections`` connections are open, ``ws_max_connections_per_client`` from one
address (HTTP 503 / 429 beyond). Notifications go through a bounded per-connection queue, and
a client that does not read them fast enough is disconnected rather than slowing the node.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web

from chain.bounded_json import JsonLimitError, loads_bounded
from chain.errors import ValidationError
from chain.limits import MAX_RPC_JSON_DEPTH
from node.config import NodeConfig
from node.ledger import CommittedBlock
from node.log_index import LogQuery, block_log_entries
from node.rpc import format as fmt
from node.rpc import params as p
from node.rpc.connections import (
    BodyPace,
    BodyTooLarge,
    BodyTooSlow,
    ConnectionLimits,
    admitting,
    descriptor_bound,
    read_body,
)
from node.rpc.errors import ErrorCode, InvalidParams, RpcError, error_response, refusal_error
from node.rpc.methods import EXPENSIVE_METHODS, RpcApi
from node.rpc.rate_limit import RateLimiter, client_key

log = logging.getLogger(__name__)

_WS_QUEUE_SIZE = 1_000
_JSON_CONTENT = "application/json"

_Response = dict[str, Any] | list[dict[str, Any]] | None
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_REFUSED_JSON = {"too_large", "too_deep"}
"""JSON refusals answered -32600 (the request is refused for its shape); the others -32700."""


def _host_name(value: str | None) -> str | None:
    """The host name of a ``Host`` header or an ``Origin`` (lower case, no port or
    brackets), or None if there is none."""
    if not value:
        return None
    try:
        split = urlsplit(value if "//" in value else "//" + value)
        return split.hostname
    except ValueError:
        return None


def _name_allowed(name: str | None, allowed: tuple[str, ...]) -> bool:
    return "*" in allowed or (name is not None and name in allowed)


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _request_id_ok(value: Any) -> bool:
    return (
        value is None
        or isinstance(value, str)
        or (isinstance(value, int) and not isinstance(value, bool))
    )


class _Subscriber:
    """One WebSocket connection's subscriptions and outgoing notification queue."""

    def __init__(self, socket: web.WebSocketResponse, client: str) -> None:
        self.socket = socket
        self.client = client
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(_WS_QUEUE_SIZE)
        self.subscriptions: dict[str, tuple[str, LogQuery | None]] = {}
        self.overflowed = False

    def push(self, message: dict[str, Any]) -> None:
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(_dumps(message))
        except asyncio.QueueFull:
            self.overflowed = True


class RpcServer:
    """Serves an :class:`RpcApi` over HTTP and WebSocket."""

    def __init__(self, api: RpcApi, config: NodeConfig) -> None:
        """Build the aiohttp application; :meth:`start` binds it."""
        self.api = api
        self.config = config
        self._subscribers: set[_Subscriber] = set()
        self._subscription_ids = itertools.count(1)
        self._ws_open = 0
        self._ws_per_client: Counter[str] = Counter()
        self.rate_limiter = RateLimiter(
            config.rate_limit_per_s,
            config.rate_limit_burst,
            frozenset(client_key(address) for address in config.rate_limit_exempt),
        )
        # The address the server is bound to is a name it may be reached by, too (a literal
        # address cannot be rebound to another host, unlike a DNS name).
        bound = () if config.rpc_host in ("0.0.0.0", "::") else (config.rpc_host.lower(),)
        self._allowed_hosts = tuple(name.lower() for name in (*config.rpc_allowed_hosts, *bound))
        self._allowed_origins = tuple(name.lower() for name in config.rpc_allowed_origins)
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.Server | None = None
        self.connections = ConnectionLimits(
            max_connections=min(config.rpc_max_connections, descriptor_bound()),
            max_per_client=config.rpc_max_connections_per_client,
            exempt=frozenset(client_key(address) for address in config.rate_limit_exempt),
        )
        """The RPC connections open now against their bounds."""
        self.body_pace = BodyPace(
            idle_timeout_s=config.rpc_body_idle_timeout_s,
            min_rate_bytes_s=config.rpc_body_min_rate_bytes_s,
        )
        """The pace a request body must keep as it is read."""
        self.port: int | None = None
        self.app = web.Application(
            client_max_size=config.max_request_bytes, middlewares=[self._check_host_and_origin]
        )
        self.app.router.add_post("/", self._handle_http)
        self.app.router.add_get("/", self._handle_ws)
        self.app.router.add_get("/ws", self._handle_ws)

    async def start(self) -> int:
        """Bind and start serving; returns the bound TCP port. Each connection is admitted
        under :attr:`connections` first (:mod:`node.rpc.connections`)."""
        self._runner = web.AppRunner(
            self.app,
            access_log=None,
            handle_signals=False,
            keepalive_timeout=self.config.rpc_keepalive_timeout_s,
        )
        await self._runner.setup()
        assert self._runner.server is not None
        factory = admitting(self._runner.server, self.connections, self.config.rpc_head_timeout_s)
        self._listener = await asyncio.get_running_loop().create_server(
            factory, self.config.rpc_host, self.config.rpc_port, reuse_address=True
        )
        sockets = self._listener.sockets
        self.port = int(sockets[0].getsockname()[1]) if sockets else self.config.rpc_port
        return self.port

    async def stop(self) -> None:
        """Close every connection and stop serving."""
        for subscriber in list(self._subscribers):
            await subscriber.socket.close()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self.api.close()

    # -- dispatch ------------------------------------------------------------------------------

    async def dispatch(
        self, body: bytes | str, client: str | None = None, subscriber: _Subscriber | None = None
    ) -> _Response:
        """Answer one HTTP body or WebSocket message (a request or a batch) from the client
        address ``client`` (None: not rate-limited); ``None`` when every request was a
        notification."""
        try:
            payload = loads_bounded(
                body, max_bytes=self.config.max_request_bytes, max_depth=MAX_RPC_JSON_DEPTH
            )
        except JsonLimitError as exc:
            code = (
                ErrorCode.INVALID_REQUEST if exc.reason in _REFUSED_JSON else ErrorCode.PARSE_ERROR
            )
            return error_response(None, RpcError(code, str(exc), {"reason": exc.reason}))
        if isinstance(payload, list):
            if not payload:
                return error_response(None, RpcError(ErrorCode.INVALID_REQUEST, "empty batch"))
            if len(payload) > self.config.max_batch:
                return error_response(
                    None,
                    RpcError(
                        ErrorCode.INVALID_REQUEST,
                        f"batch of {len(payload)} requests; at most {self.config.max_batch}",
                    ),
                )
            answers = await asyncio.gather(
                *(self._call(item, client, subscriber) for item in payload)
            )
            replies = [answer for answer in answers if answer is not None]
            return replies or None
        return await self._call(payload, client, subscriber)

    def _check_rate(self, method: str, client: str | None) -> None:
        if client is None or method not in EXPENSIVE_METHODS:
            return
        retry_after = self.rate_limiter.acquire(client, time.monotonic())
        if retry_after is not None:
            retry_ms = max(1, round(retry_after * 1000))
            raise RpcError(
                ErrorCode.RATE_LIMITED,
                f"rate limited: at most {self.config.rate_limit_per_s:g} expensive requests/s "
                f"per client; retry in {retry_ms} ms",
                {"retryAfterMs": retry_ms},
            )

    async def _call(
        self, request: Any, client: str | None, subscriber: _Subscriber | None
    ) -> dict[str, Any] | None:
        if not isinstance(request, dict):
            return error_response(None, RpcError(ErrorCode.INVALID_REQUEST, "not a request"))
        is_notification = "id" not in request
        request_id = request.get("id")
        if not _request_id_ok(request_id):
            return error_response(
                None, RpcError(ErrorCode.INVALID_REQUEST, "id must be a string, number or null")
            )
        method = request.get("method")
        params = request.get("params", [])
        if request.get("jsonrpc") != "2.0" or not isinstance(method, str):
            # Not a request at all, so not a notification either: always answered.
            error = RpcError(ErrorCode.INVALID_REQUEST, 'expected {"jsonrpc": "2.0", "method"}')
            return error_response(request_id, error)
        try:
            if isinstance(params, dict):
                raise InvalidParams("parameters by name are not supported; pass a list")
            if not isinstance(params, list):
                raise RpcError(ErrorCode.INVALID_REQUEST, "params must be a list")
            self._check_rate(method, client)
            result = await self._invoke(method, params, subscriber)
            reply: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "result": result}
        except RpcError as exc:
            reply = error_response(request_id, exc)
        except ValidationError as exc:
            refusal = refusal_error(exc) or RpcError(ErrorCode.INVALID_PARAMS, str(exc))
            reply = error_response(request_id, refusal)
        except Exception:
            log.exception("internal error in %s", method[:100])
            reply = error_response(request_id, RpcError(ErrorCode.INTERNAL_ERROR, "internal error"))
        return None if is_notification else reply

    async def _invoke(self, method: str, params: list[Any], subscriber: _Subscriber | None) -> Any:
        if method == "eth_subscribe":
            if subscriber is None:
                raise RpcError(
                    ErrorCode.METHOD_NOT_FOUND, "eth_subscribe needs a WebSocket connection"
                )
            return self._subscribe(subscriber, params)
        if method == "eth_unsubscribe":
            if subscriber is None:
                raise RpcError(
                    ErrorCode.METHOD_NOT_FOUND, "eth_unsubscribe needs a WebSocket connection"
                )
            (sub_id,) = p.positional(params, 1, 1, "eth_unsubscribe")
            if not isinstance(sub_id, str):
                raise InvalidParams("subscription id: expected a string")
            return subscriber.subscriptions.pop(sub_id, None) is not None
        handler = self.api.table.get(method)
        if handler is None:
            raise RpcError(ErrorCode.METHOD_NOT_FOUND, f"method not found: {method[:100]}")
        return await handler(params)

    # -- who may ask ---------------------------------------------------------------------------

    @web.middleware
    async def _check_host_and_origin(
        self, request: web.Request, handler: _Handler
    ) -> web.StreamResponse:
        """Refuse (HTTP 403, -32008) a request whose Host or Origin is not allowed."""
        host = _host_name(request.headers.get("Host"))
        if not _name_allowed(host, self._allowed_hosts):
            return _refusal(403, ErrorCode.FORBIDDEN, f"host not allowed: {str(host)[:100]}")
        origin = request.headers.get("Origin")
        if origin is not None and not _name_allowed(_host_name(origin), self._allowed_origins):
            return _refusal(403, ErrorCode.FORBIDDEN, f"origin not allowed: {origin[:100]}")
        return await handler(request)

    # -- HTTP ----------------------------------------------------------------------------------

    async def _handle_http(self, request: web.Request) -> web.StreamResponse:
        limit = self.config.max_request_bytes
        too_large = f"request body larger than {limit} bytes"
        if request.content_length is not None and request.content_length > limit:
            return _refusal(413, ErrorCode.INVALID_REQUEST, too_large)
        try:
            body = await read_body(request, self.body_pace, limit, self.connections)
        except BodyTooLarge:
            return _refusal(413, ErrorCode.INVALID_REQUEST, too_large)
        except BodyTooSlow:
            return web.Response(status=408)  # never sent: read_body closed the connection
        answer = await self.dispatch(body, client_key(request.remote or ""))
        if answer is None:
            return web.Response(status=204)
        return web.Response(body=_dumps(answer), content_type=_JSON_CONTENT)

    # -- WebSocket ----------------------------------------------------------------------------

    async def _handle_ws(self, request: web.Request) -> web.StreamResponse:
        socket = web.WebSocketResponse(max_msg_size=self.config.max_request_bytes, heartbeat=30)
        if not socket.can_prepare(request).ok:
            return web.Response(status=405, text="POST JSON-RPC requests, or open a WebSocket")
        client = client_key(request.remote or "")
        if self._ws_open >= self.config.ws_max_connections:
            limit = self.config.ws_max_connections
            return _refusal(503, ErrorCode.LIMIT_EXCEEDED, f"{limit} WebSocket connections open")
        if self._ws_per_client[client] >= self.config.ws_max_connections_per_client:
            limit = self.config.ws_max_connections_per_client
            return _refusal(
                429, ErrorCode.LIMIT_EXCEEDED, f"{limit} WebSocket connections from this client"
            )
        # Counted from before the handshake, so connections still upgrading count too.
        self._ws_open += 1
        self._ws_per_client[client] += 1
        try:
            await socket.prepare(request)
            await self._serve_ws(socket, client)
        finally:
            self._ws_open -= 1
            self._ws_per_client[client] -= 1
            if not self._ws_per_client[client]:
                del self._ws_per_client[client]
        return socket

    async def _serve_ws(self, socket: web.WebSocketResponse, client: str) -> None:
        subscriber = _Subscriber(socket, client)
        self._subscribers.add(subscriber)
        writer = asyncio.ensure_future(self._ws_writer(subscriber))
        try:
            async for message in socket:
                if message.type == WSMsgType.TEXT or message.type == WSMsgType.BINARY:
                    answer = await self.dispatch(message.data, client, subscriber)
                    if answer is not None:
                        await socket.send_str(_dumps(answer).decode())
                elif message.type == WSMsgType.ERROR:
                    break
        finally:
            self._subscribers.discard(subscriber)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer

    async def _ws_writer(self, subscriber: _Subscriber) -> None:
        while True:
            if subscriber.overflowed:
                await subscriber.socket.close(message=b"notification queue overflow")
                return
            message = await subscriber.queue.get()
            await subscriber.socket.send_str(message.decode())

    def _subscribe(self, subscriber: _Subscriber, params: list[Any]) -> str:
        kind, criteria = p.positional(params, 1, 2, "eth_subscribe")
        if kind == "newHeads":
            if criteria is not None:
                raise InvalidParams("newHeads takes no filter")
            query = None
        elif kind == "logs":
            options = p.optional_object(criteria, "filter")
            unknown = set(options) - {"address", "topics"}
            if unknown:
                raise InvalidParams(f"filter: unknown fields {sorted(unknown)}")
            query = LogQuery(
                0,
                0,
                p.address_list(options.get("address"), "filter.address"),
                p.topic_filter(options.get("topics"), "filter.topics"),
            )
        else:
            raise InvalidParams("subscription: expected 'newHeads' or 'logs'")
        if len(subscriber.subscriptions) >= self.config.ws_max_subscriptions:
            raise RpcError(
                ErrorCode.LIMIT_EXCEEDED,
                f"at most {self.config.ws_max_subscriptions} subscriptions per connection",
            )
        sub_id = fmt.quantity(next(self._subscription_ids))
        subscriber.subscriptions[sub_id] = (kind, query)
        return sub_id

    def on_block(self, committed: CommittedBlock) -> None:
        """Notify subscribers of a committed block (new head, and its matching logs)."""
        if not self._subscribers:
            return
        block = committed.block
        head: dict[str, Any] | None = None
        for subscriber in list(self._subscribers):
            for sub_id, (kind, query) in subscriber.subscriptions.items():
                if kind == "newHeads":
                    if head is None:
                        head = fmt.block_json(
                            block,
                            committed.receipts,
                            gas_limit=self.api.ledger.genesis.block_gas_limit_at(
                                block.header.height
                            ),
                        )
                        del head["transactions"]
                    subscriber.push(_notification(sub_id, head))
                else:
                    assert query is not None
                    for entry in block_log_entries(block, committed.receipts, query):
                        subscriber.push(_notification(sub_id, fmt.log_entry_json(entry)))


def _refusal(status: int, code: ErrorCode, message: str) -> web.Response:
    """An HTTP error status carrying a JSON-RPC error object."""
    return web.Response(
        status=status,
        body=_dumps(error_response(None, RpcError(code, message))),
        content_type=_JSON_CONTENT,
    )


def _notification(sub_id: str, result: Any) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "method": "eth_subscription",
        "params": {"subscription": sub_id, "result": result},
    }
