"""The processes of a running server and their memory, from ``/proc`` (Linux): for the memory benchmark, the soak
and the tests that hold the server's memory to its baseline."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it, from the parent links in ``/proc/*/stat``."""
    children: dict[int, list[int]] = defaultdict(list)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # the command name (field 2) may hold spaces and parentheses: the fields after its last ")"
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process exited meanwhile
            continue
        children[int(fields[1])].append(int(stat.parent.name))
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        found.append(current)
        stack.extend(children.get(current, []))
    return found


def rollup_kib(pid: int) -> tuple[int, int]:
    """(PSS, RSS) of one process in KiB."""
    text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    return tuple(int(re.search(rf"^{key}:\s+(\d+) kB", text, re.M).group(1)) for key in ("Pss", "Rss"))


def tree_pss_mib(pid: int) -> float:
    """PSS of ``pid`` and every process below it (tritonserver and its Python stubs), in MiB."""
    total = 0
    for process in descendants(pid):
        try:
            total += rollup_kib(process)[0]
        except (OSError, AttributeError):  # exited meanwhile, or a kernel without smaps_rollup fields
            continue
    return total / 1024
