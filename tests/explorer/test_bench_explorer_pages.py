"""The explorer bench measures every page the explorer serves: each GET route of every router
in the ``explorer`` package is either a page the bench requests or a route it lists, with
its reason, as not a page; each page's URL in the bench is one of its route's; and the
search kinds include the registry's 决定书文号 and 档号."""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import re
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

from fastapi import APIRouter
from fastapi.routing import APIRoute

import explorer

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_explorer.py"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_explorer_under_test", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _get_routes() -> set[str]:
    """Every GET route of every router the explorer package defines."""
    found: set[str] = set()
    for info in pkgutil.iter_modules(explorer.__path__):
        module = importlib.import_module(f"explorer.{info.name}")
        for value in vars(module).values():
            if isinstance(value, APIRouter):
                for route in value.routes:
                    if isinstance(route, APIRoute) and "GET" in (route.methods or set()):
                        found.add(route.path)
    return found


def _pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"\{[^}]+\}", template)
    return re.compile("^" + "[^/?]+".join(re.escape(p) for p in parts) + "$")


def test_every_get_route_is_a_benched_page_or_listed_as_not_a_page() -> None:
    bench = _bench()
    routes = _get_routes()
    assert {"/", "/credit", "/archive", "/proposal/{ref}"} <= routes
    assert not set(bench.PAGES) & set(bench.NOT_PAGES)
    missing = routes - set(bench.PAGES) - set(bench.NOT_PAGES)
    assert not missing, f"routes the explorer bench neither measures nor excludes: {missing}"
    stale = (set(bench.PAGES) | set(bench.NOT_PAGES)) - routes
    assert not stale, f"routes the bench names that the explorer does not serve: {stale}"
    assert all(reason.strip() for reason in bench.NOT_PAGES.values())


def test_each_benched_url_is_its_pages_route() -> None:
    bench = _bench()
    chain = SimpleNamespace(accounts={"dept-b": "0x" + "ab" * 20})
    samples = {
        "height": 5000,
        "tx": "0x" + "11" * 32,
        "record": "0x" + "22" * 32,
        "license": "0x" + "33" * 32,
        "proposal": 3,
    }
    urls = bench.page_urls(chain, samples)
    assert set(urls) == set(bench.PAGES.values())
    for template, name in bench.PAGES.items():
        path = urls[name].split("?", 1)[0]
        assert _pattern(template).match(path), (name, urls[name], template)


def test_the_search_kinds_include_the_registrys_keys() -> None:
    bench = _bench()
    texts = bench.search_texts({"height": 1, "tx": "0x" + "11" * 32, "record": "0x" + "22" * 32})
    assert texts["decision number"] == bench.DECISION
    assert texts["archival code"] == bench.ARCHIVAL_CODE
