"""The systemd units shipped in deploy/systemd: each is hardened and restarts on failure,
each ExecStart is a real ``lianxin`` command whose options exist (asked of ``lianxin ...
--help``), ``systemd-analyze verify`` accepts them where the tool exists, and the node's
ExecStart, run as systemd runs it, serves and stops cleanly on SIGTERM within the unit's
TimeoutStopSec."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "e2e"))

from e2e_harness import (
    CLI_TIMEOUT_S,
    cli_environment,
    free_port,
    lianxin_command,
    run_cli,
    wait_for_rpc,
)

UNITS_DIR = Path(__file__).resolve().parents[2] / "deploy" / "systemd"
UNITS = sorted(UNITS_DIR.glob("*.service"))
INSTALLED_LIANXIN = "/opt/lianxin/venv/bin/lianxin"
"""Where the units expect the console script (docs/operations.md, "Running under systemd")."""
STATE_ROOT = "/var/lib/lianxin"
"""Where the units expect the chain and data directories."""
INSTANCE = "dept-a"
"""The instance name a template unit is checked with."""
EXEC_PREFIXES = "-@:+!"
"""Characters systemd allows before an ExecStart command (ignore failure, argv0, ...)."""

Unit = dict[str, dict[str, list[str]]]


def parse_unit(text: str) -> Unit:
    """Sections → key → values (a key may repeat) of a unit file, with systemd's comment and
    line-continuation rules."""
    unit: Unit = {}
    section: dict[str, list[str]] | None = None
    logical: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not logical and (not line or line[0] in "#;"):
            continue
        if line.endswith("\\"):
            logical.append(line[:-1])
            continue
        line = " ".join([*logical, line]).strip()
        logical = []
        header = re.fullmatch(r"\[([A-Za-z]+)\]", line)
        if header:
            section = unit.setdefault(header.group(1), {})
            continue
        assert section is not None, f"a setting before any section: {line!r}"
        key, separator, value = line.partition("=")
        assert separator, f"not a setting: {line!r}"
        section.setdefault(key.strip(), []).append(value.strip())
    return unit


def one(unit: Unit, section: str, key: str) -> str:
    """The single value of ``key`` in ``section``."""
    values = unit.get(section, {}).get(key, [])
    assert len(values) == 1, (section, key, values)
    return values[0]


def exec_start(path: Path) -> list[str]:
    """The unit's ExecStart as an argument vector, its instance specifier filled in."""
    command = one(parse_unit(path.read_text()), "Service", "ExecStart")
    return shlex.split(command.lstrip(EXEC_PREFIXES).replace("%i", INSTANCE))


def help_text(*words: str) -> tuple[int, str]:
    """Exit status and output of ``lianxin WORDS --help``."""
    result = run_cli(*words, "--help")
    return result.code, result.stdout + result.stderr


def test_the_three_units_are_shipped() -> None:
    names = {path.name for path in UNITS}
    assert names == {
        "lianxin-node@.service",
        "lianxin-registry.service",
        "lianxin-explorer.service",
    }


@pytest.mark.parametrize("path", UNITS, ids=lambda path: path.name)
def test_each_unit_is_hardened_and_restarts_on_failure(path: Path) -> None:
    unit = parse_unit(path.read_text())
    service = unit["Service"]
    assert one(unit, "Service", "User") not in ("", "root", "0")
    assert one(unit, "Service", "User") == one(unit, "Service", "Group")
    for key, expected in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "PrivateTmp": "yes",
        "ProtectHome": "yes",
        "Restart": "on-failure",
        "KillSignal": "SIGTERM",
        "CapabilityBoundingSet": "",
    }.items():
        assert one(unit, "Service", key) == expected, (path.name, key)
    # What the service may write is its own directory under the state root, and it runs there.
    writable = one(unit, "Service", "ReadWritePaths").split()
    assert writable and all(p.startswith(STATE_ROOT + "/") for p in writable), writable
    assert one(unit, "Service", "WorkingDirectory") in writable
    assert int(one(unit, "Service", "TimeoutStopSec")) >= 30
    assert "ExecStartPre" not in service and "ExecStop" not in service
    assert one(unit, "Install", "WantedBy") == "multi-user.target"


def test_the_node_gets_time_to_sync_its_wal_and_is_not_restarted_into_a_refusal() -> None:
    unit = parse_unit((UNITS_DIR / "lianxin-node@.service").read_text())
    assert int(one(unit, "Service", "TimeoutStopSec")) >= 60
    # SIGTERM to the node itself, SIGKILL only after TimeoutStopSec.
    assert one(unit, "Service", "KillMode") == "mixed"
    # Exit status 2: bad configuration, or a restored validator not confirmed by its operator.
    assert one(unit, "Service", "RestartPreventExitStatus") == "2"
    assert "%i" in one(unit, "Service", "ReadWritePaths")


@pytest.mark.parametrize("path", UNITS, ids=lambda path: path.name)
def test_exec_start_is_a_real_lianxin_command_with_options_that_exist(path: Path) -> None:
    argv = exec_start(path)
    assert argv[0] == INSTALLED_LIANXIN
    options = [word.split("=", 1)[0] for word in argv[1:] if word.startswith("-")]
    # The command words come first: everything after the first option is options and values.
    first_option = next(i for i, word in enumerate(argv) if word.startswith("-"))
    commands = argv[1:first_option]
    assert commands
    helps: list[str] = []
    for depth in range(len(commands) + 1):
        code, text = help_text(*commands[:depth])
        assert code == 0, (commands[:depth], text)
        if depth < len(commands):
            assert re.search(rf"\b{re.escape(commands[depth])}\b", text), (commands, depth)
        helps.append(text)
    # Each option is offered by the command or by a command group above it.
    for option in options:
        assert any(re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", h) for h in helps), (
            path.name,
            option,
        )
    # A command that does not exist is refused the same way, so the check above can fail.
    code, _ = help_text(*commands[:-1], "no-such-command")
    assert code != 0


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_systemd_analyze_verify_accepts_the_units(tmp_path: Path) -> None:
    # verify requires ExecStart's program to exist: point it at this installation's script.
    script = lianxin_command()[0]
    assert Path(script).name == "lianxin", "the lianxin console script is not installed"
    for path in UNITS:
        text = path.read_text().replace(INSTALLED_LIANXIN, script)
        (tmp_path / path.name).write_text(text)
    names = [
        f"./{path.name.replace('@.', f'@{INSTANCE}.')}" if "@." in path.name else path.name
        for path in UNITS
    ]
    verified = subprocess.run(
        ["systemd-analyze", "verify", *names],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )
    # Unknown keys and unparsable values are only warned about: any output is a failure.
    assert verified.returncode == 0 and not verified.stderr.strip(), verified.stderr
    assert not verified.stdout.strip(), verified.stdout


def test_the_node_exec_start_serves_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    unit_file = UNITS_DIR / "lianxin-node@.service"
    unit = parse_unit(unit_file.read_text())
    port = free_port()
    chain_dir = tmp_path / INSTANCE
    made = run_cli("init", str(chain_dir), "--dev", "--rpc-port", str(port), "--json")
    assert made.code == 0, made
    script = lianxin_command()[0]
    argv = [
        script if word == INSTALLED_LIANXIN else word.replace(STATE_ROOT, str(tmp_path))
        for word in exec_start(unit_file)
    ]
    process = subprocess.Popen(
        argv,
        cwd=one(unit, "Service", "WorkingDirectory")
        .replace("%i", INSTANCE)
        .replace(STATE_ROOT, str(tmp_path)),
        env=cli_environment(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_rpc(f"http://127.0.0.1:{port}", process)
        # The unit's KillMode=mixed sends SIGTERM to this process: the node must be it, not
        # a child of a wrapper that would not pass the signal on.
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=int(one(unit, "Service", "TimeoutStopSec")))
        stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
        assert code == 0, stderr
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
        if process.stderr:
            process.stderr.close()
