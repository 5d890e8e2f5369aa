#!/usr/bin/env bash
# Install lianxin into .venv (only when pyproject.toml changed since the last install, or on
# a fresh machine), then create (first run) and run a local single-validator dev chain.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
STAMP=.venv/.lianxin-installed
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
# The editable install follows source changes by itself; only the dependencies and entry
# points in pyproject.toml need pip again.
wanted=$(.venv/bin/python -c 'import hashlib, sys; print(hashlib.sha256(open("pyproject.toml", "rb").read()).hexdigest(), sys.version)')
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$wanted" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e .
    printf '%s\n' "$wanted" >"$STAMP"
fi
exec .venv/bin/lianxin dev --dir devchain "$@"
