"""Settings for every test in the suite (here at the root, so that pytest puts the project
itself on the import path, not tests/, whose folders share names with its packages).
``tests/support`` holds modules that tests in several folders import (the fork server of the
SIGKILL tests, the process tree of the tests on pool workers); it is put on the import path
here, its names shared with no package.

Hypothesis examples have no deadline: a deadline is a timing assertion, and on a busy
machine a first example that waits for the interpreter or the disk exceeds the default
200 ms and fails the test (``FlakyFailure: Unreliable test timings``) though its answer was
right. Runaway examples are still bounded by ``max_examples`` and by the tests' own
timeouts.

A test marked ``no_database`` does not use the test database server (its registries, if
any, keep SQLite in their data directory whatever ``LIANXIN_TEST_DATABASE_URL`` says), so
the PostgreSQL pass of ``.ci/run`` leaves it out. The mark is held to its word: such a test
runs (setup, call and teardown, its module's fixtures included) with
``LIANXIN_TEST_DATABASE_URL`` naming a server that refuses every connection, so a marked test
that reaches for the test database fails on every run, SQLite's included."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

sys.path.insert(0, str(Path(__file__).resolve().parent / "tests" / "support"))

settings.register_profile("lianxin", deadline=None)
settings.load_profile("lianxin")

DATABASE_URL_ENV = "LIANXIN_TEST_DATABASE_URL"
"""The variable that points the database-backed tests at a PostgreSQL server."""

NO_DATABASE_URL = "postgresql+psycopg://no-database@127.0.0.1:9/test_marked_no_database"
"""What a test marked ``no_database`` finds in :data:`DATABASE_URL_ENV`: a server that
refuses every connection (port 9, discard, has no listener here)."""


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """Run a test marked ``no_database`` with :data:`NO_DATABASE_URL` in the environment."""
    if item.get_closest_marker("no_database") is None:
        yield
        return
    saved = os.environ.get(DATABASE_URL_ENV)
    os.environ[DATABASE_URL_ENV] = NO_DATABASE_URL
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(DATABASE_URL_ENV, None)
        else:
            os.environ[DATABASE_URL_ENV] = saved
