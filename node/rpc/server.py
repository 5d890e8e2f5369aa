"""The JSON-RPC transport: HTTP ``POST /`` and WebSocket (``GET /ws``, or an upgrade on ``/``)
on one aiohttp server.

Robustness rules: a body above ``max_request_bytes`` is answered 413 with a -32600 error
object; a batch longer than ``max_batch`` with one -32600 error; JSON that does not parse
with -32700; anything that is not a JSON-RPC 2.0 request object with -32600. A handler that
fails unexpectedly is logged and answered -32603. Nothing a client sends stops the server.

Over WebSocket, ``eth_subscribe`` accepts ``newHeads`` and ``logs`` (with an optional
``{address, topics}`` filter); notifications go through a bounded per-connection queue, and a
client that does not read them fast enough is disconnected rather than slowing the node.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from typing import Any

from aiohttp import WSMsgType, web

from chain.errors import ValidationError
from node.config import NodeConfig
from node.ledger import CommittedBlock
from node.log_index import LogQuery, block_log_entries
from node.rpc import format as fmt
from node.rpc import params as p
from node.rpc.errors import ErrorCode, InvalidParams, RpcError, error_response, refusal_error
from node.rpc.methods import RpcApi

log = logging.getLogger(__name__)

_WS_QUEUE_SIZE = 1_000
_JSON_CONTENT = "application/json"

_Response = dict[str, Any] | list[dict[str, Any]] | None


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

    def __init__(self, socket: web.WebSocketResponse) -> None:
        self.socket = socket
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
        self._runner: web.AppRunner | None = None
        self.port: int | None = None
        self.app = web.Application(client_max_size=config.max_request_bytes)
        self.app.router.add_post("/", self._handle_http)
        self.app.router.add_get("/", self._handle_ws)
        self.app.router.add_get("/ws", self._handle_ws)

    async def start(self) -> int:
        """Bind and start serving; returns the bound TCP port."""
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.rpc_host, self.config.rpc_port)
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self.config.rpc_port
        return self.port

    async def stop(self) -> None:
        """Close every connection and stop serving."""
        for subscriber in list(self._subscribers):
            await subscriber.socket.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- dispatch ------------------------------------------------------------------------------

    async def dispatch(self, body: bytes | str) -> _Response:
        """Answer one HTTP body or WebSocket message (a request or a batch); ``None`` when
        every request was a notification."""
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):
            return error_response(None, RpcError(ErrorCode.PARSE_ERROR, "parse error"))
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
            answers = await asyncio.gather(*(self._call(item, None) for item in payload))
            replies = [answer for answer in answers if answer is not None]
            return replies or None
        return await self._call(payload, None)

    async def _call(self, request: Any, subscriber: _Subscriber | None) -> dict[str, Any] | None:
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

    # -- HTTP ----------------------------------------------------------------------------------

    async def _handle_http(self, request: web.Request) -> web.StreamResponse:
        limit = self.config.max_request_bytes
        too_large = RpcError(ErrorCode.INVALID_REQUEST, f"request body larger than {limit} bytes")
        if request.content_length is not None and request.content_length > limit:
            return web.Response(
                status=413, body=_dumps(error_response(None, too_large)), content_type=_JSON_CONTENT
            )
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return web.Response(
                status=413, body=_dumps(error_response(None, too_large)), content_type=_JSON_CONTENT
            )
        answer = await self.dispatch(body)
        if answer is None:
            return web.Response(status=204)
        return web.Response(body=_dumps(answer), content_type=_JSON_CONTENT)

    # -- WebSocket ----------------------------------------------------------------------------

    async def _handle_ws(self, request: web.Request) -> web.StreamResponse:
        socket = web.WebSocketResponse(max_msg_size=self.config.max_request_bytes, heartbeat=30)
        if not socket.can_prepare(request).ok:
            return web.Response(status=405, text="POST JSON-RPC requests, or open a WebSocket")
        await socket.prepare(request)
        subscriber = _Subscriber(socket)
        self._subscribers.add(subscriber)
        writer = asyncio.ensure_future(self._ws_writer(subscriber))
        try:
            async for message in socket:
                if message.type == WSMsgType.TEXT or message.type == WSMsgType.BINARY:
                    answer = await self._ws_dispatch(message.data, subscriber)
                    if answer is not None:
                        await socket.send_str(_dumps(answer).decode())
                elif message.type == WSMsgType.ERROR:
                    break
        finally:
            self._subscribers.discard(subscriber)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        return socket

    async def _ws_dispatch(self, data: bytes | str, subscriber: _Subscriber) -> _Response:
        try:
            payload = json.loads(data)
        except (ValueError, RecursionError):
            return error_response(None, RpcError(ErrorCode.PARSE_ERROR, "parse error"))
        if isinstance(payload, list):
            if not payload or len(payload) > self.config.max_batch:
                return error_response(
                    None, RpcError(ErrorCode.INVALID_REQUEST, "empty or oversize batch")
                )
            answers = [await self._call(item, subscriber) for item in payload]
            return [a for a in answers if a is not None] or None
        return await self._call(payload, subscriber)

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
        if len(subscriber.subscriptions) >= self.config.max_filters:
            raise RpcError(ErrorCode.LIMIT_EXCEEDED, "too many subscriptions")
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
                            full=False,
                            gas_limit=self.api.ledger.genesis.block_gas_limit,
                        )
                        del head["transactions"]
                    subscriber.push(_notification(sub_id, head))
                else:
                    assert query is not None
                    for entry in block_log_entries(block, committed.receipts, query):
                        subscriber.push(_notification(sub_id, fmt.log_entry_json(entry)))


def _notification(sub_id: str, result: Any) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "method": "eth_subscription",
        "params": {"subscription": sub_id, "result": result},
    }
