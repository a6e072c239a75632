"""Idle memory of the CPU repository: tritonserver and its Python-backend stubs, with every page counted once.

    python -m benchmarks.memory [--settle 10] [--save-baseline] [--no-write]

Serves the benchmark workload's repository (CPU variant), waits until it is ready and ``--settle`` seconds
more, then sums PSS (proportional set size: a page shared by n processes counts 1/n in each, so the sum is the
memory the server really holds) from ``/proc/<pid>/smaps_rollup`` over the server and all its descendants,
grouped by Triton model. ``--save-baseline`` keeps the measurement in ``benchmarks/memory_baseline.json`` (with
the commit it was measured on); a normal run prints it beside the new one and records both in RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks.results import write_section
from benchmarks.workload import DEFAULT_ROOT, build_workload
from dfguard.serving.processes import descendants, rollup_kib

BASELINE = Path(__file__).with_name("memory_baseline.json")


@dataclass(frozen=True)
class Footprint:
    """PSS and RSS in MiB of one group of processes (a Triton model's stubs, or the server itself)."""

    group: str
    processes: int
    pss_mib: float
    rss_mib: float


def model_of(pid: int, repository: Path) -> str:
    """The Triton model a stub process serves (from the model path on its command line), or its program name."""
    arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    for argument in arguments:
        path = argument.decode(errors="replace")
        if path.startswith(str(repository)):
            return Path(path).relative_to(repository).parts[0]
    return Path(arguments[0].decode(errors="replace")).name


def footprints(root_pid: int, repository: Path) -> list[Footprint]:
    """One footprint per model (all its instances' stubs together) and one for tritonserver, largest first."""
    groups: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for pid in descendants(root_pid):
        try:
            groups[model_of(pid, repository)].append(rollup_kib(pid))
        except (OSError, AttributeError):  # exited, or a kernel without smaps_rollup fields
            continue
    rows = [Footprint(name, len(values), sum(v[0] for v in values) / 1024, sum(v[1] for v in values) / 1024)
            for name, values in groups.items()]
    return sorted(rows, key=lambda r: -r.pss_mib)


def measure(repository: Path, video: Path, settle: float) -> dict[str, list[Footprint]]:
    """Serve ``repository`` (CPU configs) and measure it ``settle`` seconds after it is ready ("idle"), then
    again after it has scored ``video`` once ("after one video": each step has imported what it uses)."""
    from dfguard.client import DeepfakeClient
    from dfguard.serving.server import TritonServer

    with TritonServer(repository.resolve()) as server:
        time.sleep(settle)
        idle = footprints(server.process.pid, repository.resolve())
        DeepfakeClient(server.grpc_url, timeout=600).score_video(video)
        time.sleep(settle)
        return {"idle": idle, "after one video": footprints(server.process.pid, repository.resolve())}


def total(rows: list[Footprint]) -> Footprint:
    """All groups together."""
    return Footprint("total", sum(r.processes for r in rows), sum(r.pss_mib for r in rows),
                     sum(r.rss_mib for r in rows))


def commit() -> str:
    """The checkout's commit (``+dirty`` when the tree has changes)."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                           text=True).stdout.strip()
    return head + ("+dirty" if dirty else "")


def table(columns: dict[str, list[Footprint]]) -> str:
    """Markdown: PSS per model, one column per measurement, processes in brackets, the total last."""
    names = list(columns)
    models = sorted({r.group for rows in columns.values() for r in rows},
                    key=lambda g: -max(r.pss_mib for rows in columns.values() for r in rows if r.group == g))
    lines = ["| process group | " + " | ".join(f"PSS MiB ({n})" for n in names) + " |",
             "|---|" + "---:|" * len(names)]
    for model in [*models, "total"]:
        cells = []
        for rows in columns.values():
            row = total(rows) if model == "total" else next((r for r in rows if r.group == model), None)
            cells.append(f"{row.pss_mib:.0f} ({row.processes})" if row else "–")
        label = f"**{model}**" if model == "total" else model
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Measure the idle footprint; save it as the baseline, or compare it with the baseline and record both."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settle", type=float, default=10.0, help="seconds to wait after the server is ready")
    parser.add_argument("--workload", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--save-baseline", action="store_true", help=f"keep this measurement in {BASELINE.name}")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    workload = build_workload(args.workload)
    states = measure(workload.repository, workload.videos[0], args.settle)
    label = commit()
    if args.save_baseline:
        BASELINE.write_text(json.dumps({"commit": label, "states": {
            state: [asdict(r) for r in rows] for state, rows in states.items()}}, indent=2) + "\n")
    baseline = json.loads(BASELINE.read_text()) if BASELINE.exists() and not args.save_baseline else None
    sections, ratios = [], []
    for state, rows in states.items():
        columns = {label: rows}
        if baseline:
            before = [Footprint(**r) for r in baseline["states"][state]]
            columns = {f"before, {baseline['commit']}": before, f"now, {label}": rows}
            ratios.append(f"{state}: now / before = {total(rows).pss_mib / total(before).pss_mib:.2f}")
        sections.append(f"**{state}**\n\n{table(columns)}")
    body = "\n\n".join(sections) + (
        f"\n\nThe CPU repository {args.settle:.0f} s after it was ready, and {args.settle:.0f} s after it scored one "
        f"synthetic video (32 frames): PSS summed over tritonserver and its Python-backend stubs (one per model "
        f"instance; bracketed: processes), from `/proc/<pid>/smaps_rollup`." + (
            f" {'; '.join(ratios)}." if ratios else ""))
    print(body)
    if not args.no_write and not args.save_baseline:
        write_section("memory-idle", "Idle memory of the CPU repository (PSS)", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
