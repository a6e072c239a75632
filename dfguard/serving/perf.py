"""Running ``perf_analyzer`` (from the ``tritonclient==2.51.0`` wheel) against the ensemble with real videos.

No system packages needed: the two libraries it links that are not in the wheel come from PyPI wheels already
installed, ``libb64.so.0d`` (bundled by nvidia-pytriton under a hashed name, linked here under its own) and
``libcudart.so.12`` (``nvidia-cuda-runtime-cu12``, the ``bench`` extra).
"""

from __future__ import annotations

import base64
import csv
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from dfguard.errors import DfguardError


def perf_analyzer_binary() -> Path:
    """The ``perf_analyzer`` next to this interpreter (installed by the tritonclient wheel)."""
    binary = Path(sys.executable).with_name("perf_analyzer")
    if not binary.exists():
        found = shutil.which("perf_analyzer")
        if not found:
            raise FileNotFoundError("perf_analyzer not found: install tritonclient[grpc]==2.51.0")
        binary = Path(found)
    return binary


def perf_analyzer_environment(cache: Path) -> dict[str, str]:
    """``LD_LIBRARY_PATH`` with libb64 (from nvidia-pytriton's bundled libraries) and CUDA's runtime library."""
    import site

    directories = []
    for packages in map(Path, site.getsitepackages()):
        bundled = sorted((packages / "nvidia_pytriton.libs").glob("libb64-*.so.0d"))
        if bundled:
            links = cache / "perf_analyzer_libs"
            links.mkdir(parents=True, exist_ok=True)
            link = links / "libb64.so.0d"
            if not link.exists():
                link.symlink_to(bundled[0])
            directories.append(str(links))
        runtime = packages / "nvidia" / "cuda_runtime" / "lib"
        if runtime.is_dir():
            directories.append(str(runtime))
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [*directories, env.get("LD_LIBRARY_PATH")]))
    return env


def input_data(videos: list[bytes], num_frames: int, path: Path) -> Path:
    """Write ``--input-data`` JSON: one entry per video, its bytes base64-encoded as a UINT8 tensor."""
    entries = [{"VIDEO": {"b64": base64.b64encode(video).decode(), "shape": [len(video)]},
                "NUM_FRAMES": [num_frames]} for video in videos]
    path.write_text(json.dumps({"data": entries}))
    return path


@dataclass(frozen=True)
class PerfRow:
    """One concurrency level of a sweep."""

    concurrency: int
    throughput: float  # inferences (videos) per second
    p50_ms: float
    p95_ms: float


def run_sweep(url: str, videos: list[bytes], workdir: Path, *, model: str = "deepfake_video", num_frames: int = 32,
              concurrency: tuple[int, int] = (1, 4), requests_per_window: int = 8,
              timeout: float = 600) -> tuple[list[PerfRow], str]:
    """A gRPC concurrency sweep; returns the rows of its CSV and perf_analyzer's output (raises on failure)."""
    workdir.mkdir(parents=True, exist_ok=True)
    data = input_data(videos, num_frames, workdir / "input_data.json")
    report = workdir / "perf_analyzer.csv"
    command = [str(perf_analyzer_binary()), "-m", model, "-u", url, "-i", "grpc", "--input-data", str(data),
               f"--concurrency-range={concurrency[0]}:{concurrency[1]}", "--measurement-mode=count_windows",
               f"--measurement-request-count={requests_per_window}", "--max-trials=3",
               "--stability-percentage=1000", "-f", str(report), "--percentile=95"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                            env=perf_analyzer_environment(workdir))
    output = result.stdout + result.stderr
    if result.returncode != 0:
        raise DfguardError(f"perf_analyzer failed ({result.returncode}):\n{output[-3000:]}")
    with report.open() as handle:
        rows = [PerfRow(int(r["Concurrency"]), float(r["Inferences/Second"]), float(r["p50 latency"]) / 1000,
                        float(r["p95 latency"]) / 1000) for r in csv.DictReader(handle)]
    return sorted(rows, key=lambda row: row.concurrency), output  # perf_analyzer sorts its CSV by throughput
