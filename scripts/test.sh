#!/usr/bin/env bash
# Install the project with its test dependencies into .venv, then lint, type-check and run
# the tests. Arguments are passed to pytest (e.g. a path or -k EXPR).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
# System tools the tests use: the openssl CLI (interop), Node.js + npm (the pinned solc that
# checks the committed contract artifacts) and Debian's Chromium (the citizen page test).
missing=()
command -v openssl >/dev/null || missing+=(openssl)
command -v npm >/dev/null || missing+=(nodejs npm)
command -v chromium >/dev/null || missing+=(chromium)
# Chinese glyphs for the citizen page screenshots.
fc-list 2>/dev/null | grep -qi "wenquanyi\|wqy" || missing+=(fonts-wqy-microhei)
# pdftoppm and pdftotext: the credit report PDF is rendered and its Chinese text read back.
command -v pdftoppm >/dev/null || missing+=(poppler-utils)
# apt installs them in the background while pip installs the project and the linters run.
apt_pid=""
apt_log=$(mktemp)
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
        (
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
        ) >"$apt_log" 2>&1 </dev/null &
        apt_pid=$!
    else
        echo "note: not installed (tests that need them are skipped): ${missing[*]}" >&2
    fi
fi

if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[test]"

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy

if [ -n "$apt_pid" ]; then
    if ! wait "$apt_pid"; then
        cat "$apt_log" >&2
        echo "apt-get could not install: ${missing[*]}" >&2
        exit 1
    fi
fi
rm -f "$apt_log"
if command -v npm >/dev/null; then
    npm ci --silent --no-audit --no-fund
fi

# pytest's exit code 5 (nothing collected) is a failure here, never a pass.
run_pytest() {
    set +e
    .venv/bin/python -m pytest "$@"
    local status=$?
    set -e
    if [ "$status" -eq 5 ]; then
        echo "pytest collected no tests ($*): failing" >&2
        return 1
    fi
    return "$status"
}

if [ "$#" -gt 0 ]; then
    run_pytest "$@"
    exit $?
fi
# The whole suite in two runs. First everything but the multi-validator networks, on both
# cores: each test process draws its own ports and directories, and a single-node test's
# deadlines allow for a busy machine. Then the networks (marker "network"), two at a time
# and apart from the rest, which keeps both cores busy: a network test waits on consensus
# more than it computes (about a third of a core on average), so two of them share the
# cores with their rounds still within their timeouts.
status=0
run_pytest -n 2 --dist worksteal -m "not network" --durations=15 || status=$?
run_pytest -n 2 --dist worksteal -m network --durations=10 tests/e2e || status=$?
exit "$status"
