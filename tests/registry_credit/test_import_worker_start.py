"""An import's worker process starts on what it needs: the modules that prepare records,
and the credit keys it is sent, bring in no HTTP stack (FastAPI: a third of a second of the
worker's start); the keys' vault is still there for whoever asks."""

from __future__ import annotations

import pickle
import subprocess
import sys

import pytest

from registry.credit.keys import CreditKeys

pytestmark = pytest.mark.no_database

_WORKER_MODULES = """
import pickle, sys
import credit.importing.workers
import registry.credit.record_rows
keys = pickle.loads(sys.stdin.buffer.read())
assert keys.subject_key("91350100M000100Y43")
print(sorted(set(sys.modules) & {"fastapi", "starlette", "registry.data_vault"}))
"""


def test_the_worker_s_modules_and_keys_bring_in_no_http_stack() -> None:
    keys = CreditKeys(b"worker start: a fixed master secret")
    keys.vault.seal(b"used before the keys are sent")
    ran = subprocess.run(
        [sys.executable, "-c", _WORKER_MODULES],
        input=pickle.dumps(keys),
        capture_output=True,
        check=True,
    )
    assert ran.stdout.decode().strip() == "[]"


def test_the_keys_vault_seals_and_opens() -> None:
    keys = CreditKeys(b"worker start: a fixed master secret")
    sealed = keys.vault.seal(b"evidence")
    assert sealed != "evidence"
    assert CreditKeys(b"worker start: a fixed master secret").vault.open(sealed) == b"evidence"
