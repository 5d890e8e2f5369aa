"""Route lookup by exact path for the application's fixed paths.

The router finds a request's route by trying every route in order until one matches, and
FastAPI tries the routes of each included router in turn: a route near the end of the table
(``POST /v1/data/read`` is among the last) costs a hundred and more regular-expression
matches, with FastAPI's bookkeeping around each, before its handler runs (about 0.14 ms of
CPU per request measured here, a tenth of a gated read).

:class:`RouteIndex` sits where the router's own dispatch was (``router.middleware_stack``)
and remembers, for each (method, path) served by a route without path parameters, the
top-level route that the full search found first. The next request for that method and path
is dispatched by the router's own code over that one route (a shallow copy of the router
whose table holds only it), so it is handled exactly as the full search would have handled
it: same route, same scope, same telemetry; every other request goes through the full search
as before. What a route matches depends only on the request's type, method and path here (no
route is bound to a host), and the table is fixed once the application serves; should it
change, the index is dropped and learnt again.
"""

from __future__ import annotations

import copy
from typing import Any

from starlette.routing import Host, Match, Router
from starlette.types import Receive, Scope, Send

MAX_INDEXED = 512
"""Most (method, path) pairs remembered: the application's fixed paths are far fewer."""


class RouteIndex:
    """The dispatch of ``router`` with its fixed paths looked up directly (see the module
    docstring)."""

    def __init__(self, router: Router) -> None:
        """Dispatch for ``router``, whose own dispatch (``router.app``) is the full search."""
        self.router = router
        self._index: dict[tuple[str, str], Router] = {}
        self._table: list[Any] = []

    @classmethod
    def install(cls, router: Router) -> RouteIndex | None:
        """Put an index in front of ``router``'s dispatch; None (nothing changed) where
        the router wraps its dispatch in middleware of its own."""
        stack: Any = router.middleware_stack
        if getattr(stack, "__func__", None) is not type(router).app:
            return None
        index = cls(router)
        router.middleware_stack = index
        return index

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Dispatch one request (or lifespan) like the router does."""
        if scope["type"] != "http" or scope.get("root_path", ""):
            await self.router.app(scope, receive, send)
            return
        self._check_table()
        key = (scope["method"], scope["path"])
        narrowed = self._index.get(key)
        if narrowed is not None:
            scope.setdefault("router", self.router)
            await narrowed.app(scope, receive, send)
            return
        await self.router.app(scope, receive, send)
        route = scope.get("route")
        if getattr(route, "path", None) == key[1] and len(self._index) < MAX_INDEXED:
            self._learn(key)

    def _check_table(self) -> None:
        # The same route objects in the same order (compared by identity first: no route's
        # __eq__ runs while nothing changed).
        if self.router.routes != self._table:
            self._index.clear()
            self._table = list(self.router.routes)

    def _learn(self, key: tuple[str, str]) -> None:
        """Remember the top-level route the full search finds first for ``key``, if it
        finds one and no route depends on more than the type, method and path."""
        method, path = key
        probe: dict[str, Any] = {
            "type": "http",
            "method": method,
            "path": path,
            "root_path": "",
            "headers": [],
            "query_string": b"",
        }
        for route in self.router.routes:
            if isinstance(route, Host):
                return
            match, _ = route.matches(dict(probe))
            if match == Match.FULL:
                narrowed = copy.copy(self.router)
                narrowed.routes = [route]
                self._index[key] = narrowed
                return


__all__ = ["MAX_INDEXED", "RouteIndex"]
