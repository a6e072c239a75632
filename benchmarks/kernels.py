"""Blockwise 8×8 DCT high-pass: images/s and effective GB/s of every available backend, side by side with the
NumPy reference and a plain memory copy of the same bytes, on 256×256 uint8 grayscale crops.

    python -m benchmarks.kernels [--batches 1 32 256 1024] [--size 256] [--rounds 5] [--no-write]

Effective GB/s = (bytes read + bytes written) / time: 1 byte in and 4 bytes out per pixel. The copy moves the same
number of bytes (half read, half written). Like the copy, every backend writes into a preallocated output
(``out=``), as a serving loop does; a fresh 67 MB output per call would add its page faults to the kernel.
Cases are measured round by round, interleaved, and the median round is kept, so a noisy neighbour slows every
case alike. GPU cases rotate through > 200 MB of buffers so the L2
cache cannot hold them.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from benchmarks.results import calls_for, seconds_per_call, write_section
from dfguard.kernels import GPU_BACKENDS, available_backends, dct_highpass
from dfguard.progress import progress_bar

ROUND_SECONDS = 0.05
GPU_ROTATION_BYTES = 200 * 2**20


@dataclass
class Case:
    """One thing to time: a call, how to wait for it, and how many bytes it moves per call."""

    name: str
    batch: int
    call: Callable[[], object]
    bytes_moved: int
    sync: Callable[[], None] = lambda: None
    max_error: float | None = None


Row = tuple[Case, float, float, float]  # case, seconds per call, × the numpy reference, share of the copy


def _cpu_cases(batch: int, size: int, backends: list[str], rng: np.random.Generator) -> list[Case]:
    """The memory copy and the CPU backends on one batch of random 8-bit crops."""
    images = rng.integers(0, 256, (batch, size, size), dtype=np.uint8)
    moved = images.size * (1 + 4)
    src = np.empty(moved // 2, np.uint8)
    src[:] = 1
    dst = np.empty_like(src)
    cases = [Case("memory copy", batch, lambda: np.copyto(dst, src), moved)]
    reference = dct_highpass(images, backend="numpy")
    for name in backends:
        out = np.empty(images.shape, np.float32)
        error = float(np.abs(dct_highpass(images, backend=name, out=out) - reference).max())
        call = lambda n=name, o=out: dct_highpass(images, backend=n, out=o)  # noqa: E731
        cases.append(Case(name, batch, call, moved, max_error=error))
    return cases


def gpu_cases(batch: int, size: int, backends: list[str], rng: np.random.Generator) -> list[Case]:
    """The device copy and the GPU backends, rotating through enough buffers to defeat the L2 cache."""
    import cupy

    host = rng.integers(0, 256, (batch, size, size), dtype=np.uint8)
    moved = host.size * (1 + 4)
    sets = max(2, -(-GPU_ROTATION_BYTES // moved))
    inputs = [cupy.asarray(host) for _ in range(sets)]
    outputs = [cupy.empty(host.shape, cupy.float32) for _ in range(sets)]
    sources = [cupy.ones(moved // 2, cupy.uint8) for _ in range(sets)]
    targets = [cupy.empty_like(s) for s in sources]
    sync = cupy.cuda.Device().synchronize
    reference = dct_highpass(host, backend="numpy")

    def rotating(fn: Callable[[int], object]) -> Callable[[], object]:
        turn = iter(range(10**12))
        return lambda: fn(next(turn) % sets)

    cases = [Case("device copy", batch, rotating(lambda i: cupy.copyto(targets[i], sources[i])), moved, sync)]
    for name in backends:
        error = float(np.abs(cupy.asnumpy(dct_highpass(inputs[0], backend=name)) - reference).max())
        call = rotating(lambda i, n=name: dct_highpass(inputs[i], backend=n, out=outputs[i]))
        cases.append(Case(name, batch, call, moved, sync, max_error=error))
    return cases


def measure(cases: list[Case], rounds: int) -> dict[str, float]:
    """Median seconds per call of each case, measured round-robin over ``rounds`` rounds."""
    calls = {case.name: calls_for(case.call, ROUND_SECONDS, case.sync) for case in cases}
    samples: dict[str, list[float]] = {case.name: [] for case in cases}
    for _ in range(rounds):
        for case in cases:
            samples[case.name].append(seconds_per_call(case.call, calls[case.name], case.sync))
    return {name: float(np.median(times)) for name, times in samples.items()}


def table(rows: list[Row]) -> str:
    """Markdown table: one row per (case, seconds, ratio to the reference, share of the copy bandwidth)."""
    lines = ["| backend | batch | images/s | effective GB/s | × numpy reference | % of copy bandwidth "
             "| max abs error |", "|---|---:|---:|---:|---:|---:|---:|"]
    for case, seconds, vs_reference, vs_copy in rows:
        error = "—" if case.max_error is None else f"{case.max_error:.1e}"
        gigabytes_per_second = case.bytes_moved / seconds / 1e9
        lines.append(f"| {case.name} | {case.batch} | {case.batch / seconds:,.0f} | {gigabytes_per_second:.2f} "
                     f"| {vs_reference:.1f} | {vs_copy:.0%} | {error} |")
    return "\n".join(lines)


def time_group(cases: list[Case], rounds: int, reference_seconds: float | None = None) -> list[Row]:
    """Time one group (its first case is the copy that sets the bandwidth limit); ratios to the NumPy reference
    come from the group's own ``numpy`` case or from ``reference_seconds``."""
    timing = measure(cases, rounds)
    copy, reference = cases[0], timing.get("numpy", reference_seconds)
    return [(case, timing[case.name], reference / timing[case.name] if reference else float("nan"),
             timing[copy.name] / timing[case.name]) for case in cases]


def run(batches: list[int], size: int, rounds: int) -> tuple[str, list[str]]:
    """Measure every batch; return the markdown table and the target verdicts."""
    rng = np.random.default_rng(0)
    available = available_backends()
    cpu = [b for b in available if b not in GPU_BACKENDS]
    gpu = [b for b in available if b in GPU_BACKENDS]
    rows: list[Row] = []
    for batch in progress_bar(batches, desc="batches", unit="batch"):
        groups = [_cpu_cases(batch, size, cpu, rng)] + ([gpu_cases(batch, size, gpu, rng)] if gpu else [])
        for cases in groups:
            rows += time_group(cases, rounds)
    return table(rows), verdicts(rows)


def verdicts(rows: list[Row]) -> list[str]:
    """The kernels' speed targets (docs/architecture.md), checked against the measured rows."""
    out = []
    for case, _, vs_reference, vs_copy in rows:
        if case.name == "numba" and case.batch == 256:
            out.append(f"numba at batch 256: {vs_reference:.1f}× the numpy reference (target ≥ 8×): "
                       f"{'met' if vs_reference >= 8 else 'NOT met'}")
            out.append(f"numba at batch 256: {vs_copy:.0%} of the copy bandwidth (target ≥ 40 %): "
                       f"{'met' if vs_copy >= 0.4 else 'NOT met'}")
    gpu = [(case, vs_copy) for case, _, _, vs_copy in rows if case.name in GPU_BACKENDS and case.batch >= 256]
    if gpu:
        best_case, best = max(gpu, key=lambda item: item[1])
        out.append(f"fastest GPU backend at batch ≥ 256: {best_case.name}, {best:.0%} of the device copy bandwidth "
                   f"(target ≥ 75 %): {'met' if best >= 0.75 else 'NOT met'}")
    else:
        out.append("GPU backends (cupy, numba-cuda): unmeasured — no GPU on this machine.")
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table and verdicts, and record them in RESULTS.md."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32, 256, 1024])
    parser.add_argument("--size", type=int, default=256, help="crop side in pixels")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per case (median kept)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args(argv)

    markdown, verdicts = run(args.batches, args.size, args.rounds)
    body = markdown + "\n\n" + "\n".join(f"- {v}" for v in verdicts)
    print(body)
    if not args.no_write:
        key = "kernels-gpu" if any("GPU backend at" in v for v in verdicts) else "kernels-cpu"
        write_section(key, f"DCT kernels, {args.size}×{args.size} uint8 crops → float32 high-pass map", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
