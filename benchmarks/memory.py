"""Memory of the CPU repository: tritonserver and its Python-backend stubs, with every page counted once.

    python -m benchmarks.memory [--settle 10] [--save-baseline] [--no-write]
    python -m benchmarks.memory --hostile [--passes 2] [--settle 10] [--save-baseline] [--no-write]

Serves the benchmark workload's repository (CPU variant), waits until it is ready and ``--settle`` seconds
more, then sums PSS (proportional set size: a page shared by n processes counts 1/n in each, so the sum is the
memory the server really holds) from ``/proc/<pid>/smaps_rollup`` over the server and all its descendants,
grouped by Triton model: idle, and after one video. ``--hostile`` measures it warm and idle (after one video),
then after each of ``--passes`` passes over the hostile corpus of the tests (``tests/hostile.py``: 8K frames, a
4K image, decompression bombs, broken files; one request at a time): what is left resident once odd uploads are
gone. ``--save-baseline`` keeps the measurement in ``benchmarks/memory_baseline.json`` (or
``memory_hostile_baseline.json``, with the commit it was measured on); a normal run prints it beside the new
one and records both in RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks.results import write_section
from benchmarks.workload import DEFAULT_ROOT, HD_SIZES, build_workload, hd_videos
from dfguard.progress import progress_bar
from dfguard.serving.processes import descendants, rollup_kib

BASELINES = {False: Path(__file__).with_name("memory_baseline.json"),
             True: Path(__file__).with_name("memory_hostile_baseline.json")}
TESTS = Path(__file__).resolve().parents[1] / "tests"


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


def measure_hostile(repository: Path, video: Path, settle: float, passes: int) -> dict[str, list[Footprint]]:
    """Serve ``repository``, score ``video`` ("warm idle": the largest upload the server is sized for), then send
    the hostile corpus ``passes`` times, measuring ``settle`` seconds after each."""
    from dfguard.client import DeepfakeClient
    from dfguard.client.grpc_client import ScoringError
    from dfguard.serving.server import TritonServer

    sys.path.insert(0, str(TESTS))  # hostile.py: the corpus the tests send (made from photos in packages)
    from hostile import VIDEO, corpus

    cases = corpus()
    for case in progress_bar(cases, desc="building the hostile corpus", unit="case"):
        case.data  # noqa: B018  (built once, before any measurement)
    states = {}
    with TritonServer(repository.resolve()) as server:
        DeepfakeClient(server.grpc_url, timeout=600).score_video(video)
        time.sleep(settle)
        states["warm idle"] = footprints(server.process.pid, repository.resolve())
        client = DeepfakeClient(server.grpc_url, timeout=120)
        for done in range(1, passes + 1):
            for case in progress_bar(cases, desc=f"hostile corpus, pass {done}", unit="case"):
                try:
                    if case.model == VIDEO:
                        client.score_video(case.data, case.num_frames)
                    else:
                        client.score_image(case.data)
                except ScoringError:
                    pass  # most of the corpus is refused by name: the tests check how
            time.sleep(settle)
            states[f"after the corpus ×{done}"] = footprints(server.process.pid, repository.resolve())
    return states


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
    """Measure the footprint; save it as the baseline, or compare it with the baseline and record both."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settle", type=float, default=10.0, help="seconds to wait before each measurement")
    parser.add_argument("--workload", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--hostile", action="store_true", help="warm, then after passes over the hostile corpus")
    parser.add_argument("--passes", type=int, default=2, help="passes over the hostile corpus (--hostile)")
    parser.add_argument("--save-baseline", action="store_true", help="keep this measurement as the baseline")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    workload = build_workload(args.workload)
    if args.hostile:  # warm: a 1080p video of the HD workload, 32 frames (its tensors fill the stubs' buffers)
        video = hd_videos(args.workload)[HD_SIZES.index((1920, 1080))]
        states = measure_hostile(workload.repository, video, args.settle, args.passes)
    else:
        states = measure(workload.repository, workload.videos[0], args.settle)
    label, baseline_file = commit(), BASELINES[args.hostile]
    if args.save_baseline:
        baseline_file.write_text(json.dumps({"commit": label, "states": {
            state: [asdict(r) for r in rows] for state, rows in states.items()}}, indent=2) + "\n")
    baseline = json.loads(baseline_file.read_text()) if baseline_file.exists() and not args.save_baseline else None
    sections, ratios = [], []
    for state, rows in states.items():
        columns = {label: rows}
        if baseline:
            before = [Footprint(**r) for r in baseline["states"][state]]
            columns = {f"before, {baseline['commit']}": before, f"now, {label}": rows}
            ratios.append(f"{state}: now / before = {total(rows).pss_mib / total(before).pss_mib:.2f}")
        sections.append(f"**{state}**\n\n{table(columns)}")
    if args.hostile:
        warm, last = total(states["warm idle"]).pss_mib, total(list(states.values())[-1]).pss_mib
        body = "\n\n".join(sections) + (
            f"\n\nThe CPU repository warm and idle ({args.settle:.0f} s after it scored a 1080p video of 32 frames, "
            f"the largest upload of the HD workload), then "
            f"{args.settle:.0f} s after each pass over the tests' hostile corpus (one request at a time): PSS summed "
            f"over tritonserver and its Python-backend stubs (bracketed: processes). After the last pass: "
            f"**{last:.0f} MiB, {last / warm:.2f}× warm idle** (target ≤ 1.2×)."
            + (f" {'; '.join(ratios)}." if ratios else ""))
        key, title = "memory-hostile", "Memory after the hostile corpus (PSS)"
    else:
        body = "\n\n".join(sections) + (
            f"\n\nThe CPU repository {args.settle:.0f} s after it was ready, and {args.settle:.0f} s after it scored "
            f"one synthetic video (32 frames): PSS summed over tritonserver and its Python-backend stubs (one per "
            f"model instance; bracketed: processes), from `/proc/<pid>/smaps_rollup`."
            + (f" {'; '.join(ratios)}." if ratios else ""))
        key, title = "memory-idle", "Idle memory of the CPU repository (PSS)"
    print(body)
    if not args.no_write and not args.save_baseline:
        write_section(key, title, body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
