"""What every benchmark shares: timing, the machine's description, and writing a section of RESULTS.md."""

from __future__ import annotations

import os
import platform
import re
import shlex
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")


def seconds_per_call(fn: Callable[[], object], calls: int, sync: Callable[[], None] = lambda: None) -> float:
    """Wall-clock seconds per call of ``fn`` over ``calls`` back-to-back calls (``sync`` waits for a GPU)."""
    sync()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    sync()
    return (time.perf_counter() - start) / calls


def calls_for(fn: Callable[[], object], target_seconds: float, sync: Callable[[], None] = lambda: None) -> int:
    """How many back-to-back calls of ``fn`` take about ``target_seconds`` (one warm-up call included)."""
    return max(1, int(target_seconds / max(seconds_per_call(fn, 1, sync), 1e-9)))


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (or what ``platform`` knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_gib() -> float:
    """Total memory in GiB from /proc/meminfo (0 when unknown)."""
    try:
        match = re.search(r"MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text())
        return int(match.group(1)) / 2**20 if match else 0.0
    except OSError:
        return 0.0


def gpu_name() -> str | None:
    """The first CUDA GPU's name, if CuPy sees one."""
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
    except Exception:  # no CuPy, no driver, no GPU
        return None


def machine_description() -> str:
    """One line naming the machine, for the heading of a results section."""
    parts = [f"{cpu_model()}, {os.cpu_count()} cores, {memory_gib():.0f} GiB", f"Python {platform.python_version()}"]
    gpu = gpu_name()
    if gpu:
        parts.insert(1, gpu)
    return "; ".join(parts)


def command_line() -> str:
    """The command that produced the results, as a user would type it."""
    module = sys.modules["__main__"].__spec__
    program = f"python -m {module.name}" if module else sys.argv[0]
    return " ".join([program, *map(shlex.quote, sys.argv[1:])])


def render_section(key: str, title: str, body: str, machine: str, command: str, day: str) -> str:
    """A RESULTS.md section: markers, title, the machine, command and date it was measured with, the body."""
    return (f"<!-- {key}:begin -->\n## {title}\n\nMachine: {machine}  \nCommand: `{command}`  \nDate: {day}\n\n"
            f"{body.rstrip()}\n<!-- {key}:end -->")


def merge_sections(sections: str) -> None:
    """Put each marked section of ``sections`` into RESULTS.md, replacing the section of the same key."""
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    for match in re.finditer(r"<!-- ([\w-]+):begin -->.*?<!-- \1:end -->", sections, re.S):
        pattern = re.compile(re.escape(f"<!-- {match.group(1)}:begin -->") + ".*?"
                             + re.escape(f"<!-- {match.group(1)}:end -->"), re.S)
        section = match.group(0)
        found = pattern.search(text)
        text = pattern.sub(lambda _, s=section: s, text) if found else text.rstrip() + "\n\n" + section + "\n"
    RESULTS.write_text(text)


def write_section(key: str, title: str, body: str) -> None:
    """Replace (or append) the section ``key`` of RESULTS.md, measured on this machine by this command today."""
    merge_sections(render_section(key, title, body, machine_description(), command_line(), date.today().isoformat()))
