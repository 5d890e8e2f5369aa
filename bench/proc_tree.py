"""The processes of a bench's tree and their memory, read from ``/proc`` (Linux): each
process's parent from ``/proc/<pid>/stat``, since ``/proc/<pid>/task/<tid>/children`` is
not built into every kernel (this machine's has none, and a bench reading it saw no child)."""

from __future__ import annotations

import os


def status_mib(pid: int, field: str) -> float:
    """``field`` (VmRSS, VmHWM) of ``/proc/<pid>/status`` in MiB; 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def process_tree(root: int) -> dict[int, int]:
    """``root`` and its descendants, each with its parent, from ``/proc/*/stat``
    (``/proc/<pid>/task/<tid>/children`` is not built into every kernel)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="ascii", errors="replace") as stat:
                parent = int(stat.read().rpartition(")")[2].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    tree, todo = {root: 0}, [root]
    while todo:
        current = todo.pop()
        for child in children.get(current, []):
            tree[child] = current
            todo.append(child)
    return tree


def command_line(pid: int) -> str:
    """The command line of ``pid`` (arguments joined by spaces), empty once it is gone."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return cmdline.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


__all__ = ["command_line", "process_tree", "status_mib"]
