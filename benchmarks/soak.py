"""Soak: ``perf_analyzer`` holding the ``deepfake_video`` ensemble at a fixed concurrency for minutes.

    python -m benchmarks.soak [--workload hd|small] [--seconds 120] [--concurrency 16] [--window 10] [--no-write]

Serves the benchmark workload's repository (CPU variant), warms it up with ``--concurrency`` requests at once
(every step has then built what it keeps, its buffers grown to this load), and runs perf_analyzer for
``--seconds`` (three measurement windows of a third each), exporting every request's timestamps. Reports the
requests served and failed (perf_analyzer's and Triton's own failure counts), the throughput of each
``--window`` seconds and of windows three times as long (stable: their spread; a short window holds few HD
videos at this speed), and the server's memory (PSS of tritonserver and its stubs) idle after the warm-up, every
window, and idle after the soak (growth < 10 % is the target).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.pipeline import model_statistics
from benchmarks.results import write_section
from benchmarks.workload import DEFAULT_ROOT, build_workload, hd_videos
from dfguard.serving.perf import input_data, perf_analyzer_binary, perf_analyzer_environment

OUTPUT = Path(__file__).with_name("perf_output") / "soak"
WORKLOADS = {"small": "synthetic 320×240 clips", "hd": "HD videos (720p/1080p, 10 s, 1-3 people)"}


@dataclass(frozen=True)
class Soak:
    """What one soak measured."""

    served: int
    failed_client: int
    failed_server: int
    window_throughput: list[float]  # videos/s of each full window
    long_window_throughput: list[float]  # videos/s of each full window three times as long
    memory_mib: list[float]  # after the warm-up, then once per window, then at the end
    p50_ms: float
    p95_ms: float

    @property
    def growth(self) -> float:
        return self.memory_mib[-1] / self.memory_mib[0] - 1

    @staticmethod
    def spread(rates: list[float]) -> float:
        """Largest deviation of a window's throughput from their mean, as a fraction of it."""
        array = np.array(rates)
        return float(np.abs(array - array.mean()).max() / array.mean()) if len(array) else float("nan")


def failures(url: str) -> int:
    """Failed inferences Triton has counted for ``deepfake_video`` since it started."""
    return int(model_statistics(url)["deepfake_video"]["failures"])


def warm_up(url: str, videos: list[bytes], num_frames: int, concurrency: int) -> None:
    """``concurrency`` requests at once, cycling through the videos: every step has then built what it keeps and
    the server's buffers have grown to what this load needs, so the memory baseline is the loaded one."""
    from concurrent.futures import ThreadPoolExecutor

    from dfguard.client.grpc_client import Connection, DeepfakeClient

    def score(video: bytes) -> None:
        with DeepfakeClient(Connection(url, timeout=900.0)) as client:
            client.score_video(video, num_frames)

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(score, [videos[k % len(videos)] for k in range(max(concurrency, len(videos)))]))


def sample_memory(pid: int, every: float, stop: threading.Event, into: list[float]) -> None:
    """Append the server's PSS every ``every`` seconds until ``stop``."""
    from dfguard.serving.processes import tree_pss_mib

    while not stop.wait(every):
        into.append(tree_pss_mib(pid))


def completions(export: Path) -> tuple[np.ndarray, np.ndarray, int]:
    """From perf_analyzer's profile export: each successful request's end time (s, from the first request's
    start) and latency (ms), and the number of requests that got no response."""
    experiments = json.loads(export.read_text())["experiments"]
    requests = [r for experiment in experiments for r in experiment["requests"]]
    starts = np.array([r["timestamp"] for r in requests], np.float64)
    answered = [r for r in requests if r.get("response_timestamps")]
    ends = np.array([r["response_timestamps"][-1] for r in answered], np.float64)
    began = np.array([r["timestamp"] for r in answered], np.float64)
    return (ends - starts.min()) / 1e9, (ends - began) / 1e6, len(requests) - len(answered)


def run(url: str, pid: int, videos: list[bytes], num_frames: int, seconds: int, concurrency: int, window: int,
        workdir: Path) -> Soak:
    """Warm up, then hold ``concurrency`` requests in flight for ``seconds``, sampling memory each ``window``."""
    from dfguard.serving.processes import tree_pss_mib

    workdir.mkdir(parents=True, exist_ok=True)
    warm_up(url, videos, num_frames, concurrency)
    memory, stop = [tree_pss_mib(pid)], threading.Event()
    failed_before = failures(url)
    sampler = threading.Thread(target=sample_memory, args=(pid, window, stop, memory), daemon=True)
    export = workdir / "profile_export.json"
    export.unlink(missing_ok=True)  # perf_analyzer refuses to overwrite one
    command = [str(perf_analyzer_binary()), "-m", "deepfake_video", "-u", url, "-i", "grpc",
               "--input-data", str(input_data(videos, num_frames, workdir / "input_data.json")),
               f"--concurrency-range={concurrency}:{concurrency}", "--measurement-mode=time_windows",
               # three windows (perf_analyzer's fewest for a "stable" result) that any spread passes: one run of
               # ``seconds`` in all; our own windows come from the exported timestamps
               f"--measurement-interval={seconds * 1000 // 3}", "--max-trials=3", "--stability-percentage=1000",
               "--percentile=95", "--profile-export-file", str(export)]
    sampler.start()
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, timeout=seconds * 4 + 600,
                            env=perf_analyzer_environment(workdir))
    stop.set()
    sampler.join()
    time.sleep(window)  # idle again, as at the baseline
    memory.append(tree_pss_mib(pid))
    (workdir / "perf_analyzer.log").write_text(result.stdout + result.stderr)
    if not export.exists():
        raise SystemExit(f"perf_analyzer wrote no profile export ({result.returncode}):\n{result.stderr[-3000:]}")
    ends, latency, unanswered = completions(export)
    print(f"perf_analyzer ran {time.monotonic() - started:.0f} s, exit {result.returncode}")
    rates, long_rates = window_rates(ends, window), window_rates(ends, 3 * window)
    return Soak(len(ends), unanswered + (result.returncode != 0), failures(url) - failed_before, rates, long_rates,
                memory, float(np.percentile(latency, 50)), float(np.percentile(latency, 95)))


def window_rates(ends: np.ndarray, window: float) -> list[float]:
    """Completions per second in each full ``window`` from the first completion on (before it the pipeline is
    filling: with 16 HD videos in flight the first answer takes many seconds)."""
    if not len(ends):
        return []
    edges = np.arange(ends.min(), ends.max() - window + 1e-9, window)
    return [float(((ends >= a) & (ends < a + window)).sum() / window) for a in edges]


def report(soak: Soak, window: int) -> str:
    """Markdown: the totals, then one row per window."""
    lines = [f"Requests served: **{soak.served}**, failed: **{soak.failed_client}** (perf_analyzer), "
             f"**{soak.failed_server}** (Triton's count); latency p50 {soak.p50_ms / 1000:.1f} s, p95 "
             f"{soak.p95_ms / 1000:.1f} s. Throughput per {window} s window (from the first answer): mean "
             f"{np.mean(soak.window_throughput):.2f} videos/s, largest deviation "
             f"{soak.spread(soak.window_throughput):.0%}; per {3 * window} s window: "
             + ", ".join(f"{r:.2f}" for r in soak.long_window_throughput)
             + f" (largest deviation {soak.spread(soak.long_window_throughput):.0%}). Server PSS, idle: "
             f"{soak.memory_mib[0]:.0f} MiB after the warm-up, {soak.memory_mib[-1]:.0f} MiB after the soak "
             f"(**{soak.growth:+.1%}**; peak under load {max(soak.memory_mib):.0f} MiB).", "",
             f"| {window} s window | videos/s | server PSS MiB at its end |", "|---:|---:|---:|"]
    for k, rate in enumerate(soak.window_throughput):
        memory = soak.memory_mib[k + 1] if k + 1 < len(soak.memory_mib) else float("nan")
        lines.append(f"| {k + 1} | {rate:.2f} | {memory:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Build the workload, serve it, soak it, print and record the result."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", choices=sorted(WORKLOADS), default="hd")
    parser.add_argument("--seconds", type=int, default=120)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--window", type=int, default=10)
    parser.add_argument("--num-frames", type=int, default=32)
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--out", type=Path, default=OUTPUT)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    from dfguard.serving.server import TritonServer

    workload = build_workload(args.root)
    paths = hd_videos(args.root) if args.workload == "hd" else workload.videos
    videos = [path.read_bytes() for path in paths]
    with TritonServer(workload.repository.resolve()) as server:
        soak = run(server.grpc_url, server.process.pid, videos, args.num_frames, args.seconds, args.concurrency,
                   args.window, args.out)
    body = (report(soak, args.window) + f"\n\nperf_analyzer (tritonclient 2.51.0) over gRPC at concurrency "
            f"{args.concurrency} for {args.seconds} s, {len(videos)} {WORKLOADS[args.workload]} as input data, "
            f"{args.num_frames} frames each, `tiny` preset, CPU variant; windows from the exported request "
            f"timestamps, memory sampled every {args.window} s. Export and log: `{args.out.name}/`.")
    print(body)
    if not args.no_write:
        write_section(f"soak-{args.workload}", f"Soak, deepfake_video ensemble ({args.workload} workload, CPU "
                      "variant)", body)
    return 0 if soak.failed_client == soak.failed_server == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
