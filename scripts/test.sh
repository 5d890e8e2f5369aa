#!/usr/bin/env bash
# Install the project with its test dependencies into .venv, then run lint, types and tests.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[test]"

# The openssl CLI is used by interop tests; Node.js + npm compile the Solidity sources.
if ! command -v openssl >/dev/null; then
    apt-get update -qq && apt-get install -y -qq openssl
fi
if [ -f package.json ]; then
    npm ci --silent --no-audit --no-fund
fi

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy

set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
    echo "pytest collected no tests: failing" >&2
    exit 1
fi
exit "$status"
