"""``perf_analyzer`` driver: a gRPC concurrency sweep against the ``deepfake_video`` ensemble with real videos.

    python -m benchmarks.perf [--url HOST:PORT] [--videos 8] [--num-frames 32] [--concurrency 1 8] [--no-write]

Without ``--url`` it serves the benchmark workload's repository (CPU variant) itself. Builds ``--input-data``
JSON from the video files (UINT8 bytes, base64), keeps perf_analyzer's CSV, and writes a markdown table and a
throughput-vs-latency plot into ``benchmarks/perf_output/``.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
from pathlib import Path

from benchmarks.results import write_section
from benchmarks.workload import DEFAULT_ROOT, build_workload
from dfguard.serving.perf import PerfRow, run_sweep

OUTPUT = Path(__file__).with_name("perf_output")
FIGURES = Path(__file__).with_name("figures")  # plots that RESULTS.md shows (tracked, unlike perf_output/)


def markdown(rows: list[PerfRow]) -> str:
    """The sweep as a markdown table."""
    lines = ["| concurrency | videos/s | p50 ms | p95 ms |", "|---:|---:|---:|---:|"]
    lines += [f"| {r.concurrency} | {r.throughput:.2f} | {r.p50_ms:.0f} | {r.p95_ms:.0f} |" for r in rows]
    return "\n".join(lines)


def plot(rows: list[PerfRow], path: Path, title: str) -> Path:
    """Throughput against p50 and p95 latency, one point per concurrency, labelled."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    axis = fig.subplots()
    for name, values, style in (("p50", [r.p50_ms for r in rows], "o-"), ("p95", [r.p95_ms for r in rows], "s--")):
        axis.plot(values, [r.throughput for r in rows], style, label=f"{name} latency")
    for r in rows:
        axis.annotate(f"c={r.concurrency}", (r.p50_ms, r.throughput), textcoords="offset points", xytext=(4, 4))
    axis.set_xlabel("latency per video (ms)")
    axis.set_ylabel("throughput (videos/s)")
    axis.set_title(title)
    axis.grid(alpha=0.3)
    axis.legend()
    fig.savefig(path, dpi=120)
    return path


def main(argv: list[str] | None = None) -> int:
    """Run the sweep, keep its CSV, write the table and plot, record the table in RESULTS.md."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a running server's gRPC endpoint (default: serve the workload here)")
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--num-frames", type=int, default=32)
    parser.add_argument("--concurrency", type=int, nargs=2, default=[1, 8], metavar=("FROM", "TO"))
    parser.add_argument("--requests-per-window", type=int, default=16)
    parser.add_argument("--workload", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--out", type=Path, default=OUTPUT)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    workload = build_workload(args.workload, videos=args.videos)
    videos = [path.read_bytes() for path in workload.videos]
    with contextlib.ExitStack() as stack:
        url = args.url
        if url is None:
            from dfguard.serving.server import TritonServer

            url = stack.enter_context(TritonServer(workload.repository.resolve())).grpc_url
        rows, _ = run_sweep(url, videos, args.out, num_frames=args.num_frames, concurrency=tuple(args.concurrency),
                            requests_per_window=args.requests_per_window)
    table = markdown(rows)
    (args.out / "perf.md").write_text(table + "\n")
    figure = plot(rows, args.out / "throughput_latency.png", f"deepfake_video, {args.num_frames} frames per video")
    body = (table + f"\n\nperf_analyzer (tritonclient 2.51.0) over gRPC, {len(videos)} synthetic 320×240 H.264 "
            f"videos as input data, {args.num_frames} frames each, `tiny` preset, CPU variant. CSV, table and plot: "
            f"`{args.out.name}/perf_analyzer.csv`, `perf.md`, `{figure.name}`.")
    print(body)
    if not args.no_write:
        FIGURES.mkdir(exist_ok=True)
        shutil.copy(figure, FIGURES / "perf-analyzer-cpu.png")
        body += "\n\n![throughput against latency](figures/perf-analyzer-cpu.png)"
        write_section("perf-analyzer-cpu", "perf_analyzer sweep, deepfake_video ensemble (CPU variant)", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
