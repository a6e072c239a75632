"""Pipeline benchmark: the same videos through (a) the obvious script a user would write (PyAV → mediapipe →
PyTorch eager, one video at a time), (b) our in-process pipeline, (c) our Triton ensemble (CPU variant) over gRPC
at several concurrencies, side by side in one run, against the decode-bound limit; and the peers at our work:
(d) the DFDC winner's front-end (MTCNN on the frame halved; facenet-pytorch installed for benchmarks) and (e)
mediapipe on tiles, each finding every face of every sampled frame for the same crops and model (PyTorch eager).

    python -m benchmarks.pipeline [--workload small|hd] [--videos 16] [--num-frames 32] [--concurrency 1 2 4 8]
                                  [--rounds 3] [--no-peers] [--no-write]
    python -m benchmarks.pipeline --workload footage --videos DIR [...]

Reports videos/s, faces/s, p50/p95 latency per video, the speed-up over (a) and the share of the decode-bound
limit: PyAV/FFmpeg decoding exactly the frames the pipelines decode (every frame up to each sample, as
``dfguard.video.decode_frames`` does) and nothing else, with its best thread setting; no pipeline that decodes
this way beats it on this machine. For the ensemble at its best concurrency, Triton's statistics per model (queue
and compute time per request) say where the time goes. ``--workload hd``: the HD videos
(``benchmarks.workload.hd_videos``: 720p and 1080p, 10 s, 1-3 people) instead of the small clips;
``--workload footage --videos DIR``: the real clips of DIR that are 720p or more (``footage_videos``).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from benchmarks import references
from benchmarks.results import write_section
from benchmarks.workload import DEFAULT_ROOT, TEMPLATE, build_workload, hd_videos, untrained_workload
from dfguard.faces.settings import MIN_FACE_PX, DetectorConfig

if TYPE_CHECKING:
    from dfguard.inference.spec import ServingSpec


@dataclass(frozen=True)
class Measurement:
    """One pipeline's run over the videos."""

    name: str
    concurrency: int
    seconds: float
    latencies: list[float]
    faces: int

    @property
    def videos_per_second(self) -> float:
        return len(self.latencies) / self.seconds

    @property
    def faces_per_second(self) -> float:
        return self.faces / self.seconds

    def percentile_ms(self, q: float) -> float:
        return float(np.percentile(self.latencies, q) * 1000)


def measure(name: str, score: Callable[[Path], int], videos: list[Path], concurrency: int = 1) -> Measurement:
    """Score every video (``score`` returns the faces found) with ``concurrency`` in flight, after a warm-up
    that reaches every server instance (2 × ``concurrency`` videos, also in flight)."""
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(score, videos[: 2 * concurrency]))

    def timed(path: Path) -> tuple[float, int]:
        start = time.perf_counter()
        faces = score(path)
        return time.perf_counter() - start, faces

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(timed, videos))
    seconds = time.perf_counter() - start
    return Measurement(name, concurrency, seconds, [r[0] for r in results], sum(r[1] for r in results))


def table(rows: list[Measurement], obvious: Measurement, limit: Measurement) -> str:
    """Markdown: one line per measurement, its speed-up against the obvious script and its share of the limit."""
    lines = ["| pipeline | in flight | videos/s | faces/s | p50 ms | p95 ms | × obvious script | % of decode limit |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r.name} | {r.concurrency} | {r.videos_per_second:.2f} | {r.faces_per_second:.1f} | "
              f"{r.percentile_ms(50):.0f} | {r.percentile_ms(95):.0f} | "
              f"{r.videos_per_second / obvious.videos_per_second:.2f} | "
              f"{100 * r.videos_per_second / limit.videos_per_second:.0f} % |" for r in rows]
    return "\n".join(lines)


def decode_only(num_frames: int, threads: int) -> Callable[[Path], int]:
    """What every pipeline must do at least: probe, then decode the sampled frames (returns 0 faces)."""
    from dfguard.video import decode_frames, probe_video, sample_indices

    def decode(path: Path) -> int:
        decode_frames(path, sample_indices(probe_video(path).frames, num_frames), threads=threads)
        return 0

    return decode


STAT_KINDS = ("queue", "compute_input", "compute_infer", "compute_output")


def model_statistics(url: str) -> dict[str, dict[str, float]]:
    """Triton's cumulative statistics per model: requests (successful), failures, executions and nanoseconds of
    each ``STAT_KINDS``."""
    import tritonclient.grpc as grpc

    client = grpc.InferenceServerClient(url)
    stats = client.get_inference_statistics(as_json=True)["model_stats"]
    return {m["name"]: {"requests": float(m["inference_stats"].get("success", {}).get("count", 0)),
                        "failures": float(m["inference_stats"].get("fail", {}).get("count", 0)),
                        "executions": float(m.get("execution_count", 0)),
                        **{k: float(m["inference_stats"].get(k, {}).get("ns", 0)) for k in STAT_KINDS}}
            for m in stats}


def statistics_table(before: dict[str, dict[str, float]], after: dict[str, dict[str, float]], videos: int) -> str:
    """Markdown: per model, the requests and executions of one run, and per request the queue and compute time
    (compute = input + infer + output), with the compute time per video."""
    lines = ["| model | requests | executions | queue ms/request | compute ms/request | compute ms/video |",
             "|---|---:|---:|---:|---:|---:|"]
    for name in sorted(after, key=lambda n: -(after[n]["compute_infer"] - before.get(n, {}).get("compute_infer", 0))):
        delta = {k: after[name][k] - before.get(name, {}).get(k, 0.0) for k in after[name]}
        if delta["requests"] <= 0:
            continue
        compute = sum(delta[k] for k in STAT_KINDS[1:]) / 1e6
        lines.append(f"| {name} | {delta['requests']:.0f} | {delta['executions']:.0f} | "
                     f"{delta['queue'] / 1e6 / delta['requests']:.1f} | {compute / delta['requests']:.1f} | "
                     f"{compute / videos:.0f} |")
    return "\n".join(lines)


@dataclass(frozen=True)
class Run:
    """A benchmark run: the decode-limit rows, the pipelines' rows, and the per-model statistics of the ensemble at
    its best concurrency."""

    limits: list[Measurement]
    pipelines: list[Measurement]
    statistics: str
    peers: list[Measurement] = field(default_factory=list)  # the peers' front-ends doing our work: (d), (e)

    @property
    def limit(self) -> Measurement:
        return fastest(self.limits)

    @property
    def best_ensemble(self) -> Measurement | None:
        return fastest(self.pipelines[2:])


def fastest(rows: list[Measurement]) -> Measurement | None:
    """The row with the most videos/s (None without rows)."""
    return max(rows, key=lambda r: r.videos_per_second, default=None)


PEERS = {"(d) equal work, the DFDC winner's front-end: PyAV → MTCNN on the frame halved → every face → PyTorch "
         "eager": references.mtcnn_found,
         "(e) equal work: PyAV → mediapipe full range on the frame and 576-px tiles → every face → PyTorch eager":
         references.mediapipe_tiled_found}


def peer_rows(videos: list[Path], checkpoint: Path, num_frames: int) -> list[Measurement]:
    """The peers' front-ends (``benchmarks.references``) finding every face, the same model after them; MTCNN
    only where facenet-pytorch is installed."""
    from benchmarks.obvious import PeerScript

    rows = []
    for name, front_end in PEERS.items():
        if front_end is references.mtcnn_found and not references.mtcnn_installed():
            print(f"left out, facenet-pytorch is not installed ({references.MTCNN_INSTALL}): {name}")
            continue
        script = PeerScript(checkpoint, num_frames, front_end())
        rows.append(measure(name, lambda p, s=script: s.score(p)[1], videos))
    return rows


def run(videos: list[Path], checkpoint: Path, repository: Path | None, num_frames: int,
        concurrencies: list[int], spec: ServingSpec | None = None, peers: bool = True) -> Run:
    """The decode-bound limit, the obvious script, the peers at equal work (``peers``), and our two pipelines
    over the same videos (the ensemble only with a ``repository``)."""
    import threading

    from benchmarks.obvious import ObviousScript
    from dfguard.client import DeepfakeClient
    from dfguard.pipeline import LocalDetector
    from dfguard.serving.server import TritonServer

    cores = os.cpu_count() or 1
    limits = [measure(f"decode only: PyAV/FFmpeg, {'auto' if threads == 0 else threads} thread(s) per video",
                      decode_only(num_frames, threads), videos, concurrency)
              for threads, concurrency in ((0, 1), (1, cores))]
    obvious = ObviousScript(checkpoint, num_frames)
    rows = [measure("(a) obvious script: PyAV → mediapipe → PyTorch eager", lambda p: obvious.score(p)[1], videos)]
    peer_measurements = peer_rows(videos, checkpoint, num_frames) if peers else []
    local = LocalDetector(checkpoint, spec)
    rows.append(measure("(b) dfguard in-process (LocalDetector)",
                        lambda p: len(local.score(p, num_frames).faces), videos))
    if repository is None:
        return Run(limits, rows, "", peer_measurements)
    statistics: dict[int, str] = {}
    with TritonServer(repository.resolve()) as server:
        clients = threading.local()

        def remote(path: Path) -> int:
            if not hasattr(clients, "client"):
                clients.client = DeepfakeClient(server.grpc_url, timeout=600)
            return len(clients.client.score_video(path, num_frames).faces)

        for n in concurrencies:
            before = model_statistics(server.grpc_url)
            rows.append(measure("(c) dfguard Triton ensemble (CPU) over gRPC", remote, videos, n))
            # the warm-up's requests are in the delta too: per request and per video stay right, counts are ~
            statistics[n] = statistics_table(before, model_statistics(server.grpc_url), len(videos) + 2 * n)
    return Run(limits, rows, statistics[fastest(rows[2:]).concurrency], peer_measurements)


WORKLOADS = {"small": "synthetic videos (320×240, 64 frames, H.264)",
             "hd": "HD videos (1280×720 and 1920×1080, 10 s at 25/30 fps, H.264 with a keyframe every 1-2 s, 1-3 "
                   "people)",
             "footage": "real 720p and 1080p clips (studio, interviews, a music video, dancing, a street)"}


def footage_videos(folder: Path) -> list[Path]:
    """The 720p and 1080p videos under ``folder`` (at least 1280 × 720, either way up)."""
    from dfguard.train.datasets import load_folder
    from dfguard.video import probe_video

    sizes = {r.path: probe_video(r.path) for r in load_folder(folder)}
    return [path for path, info in sizes.items()
            if min(info.width, info.height) >= 720 and max(info.width, info.height) >= 1280]


def main(argv: list[str] | None = None) -> int:
    """Build the workload, run the limit and the three pipelines, print and record the tables."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", choices=sorted(WORKLOADS), default="small")
    parser.add_argument("--videos", default="16", help="how many videos (at most 6 HD ones); with --workload footage, "
                        "the folder of real videos")
    parser.add_argument("--num-frames", type=int, default=32)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--rounds", type=int, default=3, help="times each pipeline scores the video list")
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="folder for the videos and model")
    parser.add_argument("--min-face-px", type=float, default=MIN_FACE_PX, help="the smallest face to find: larger "
                        "means fewer tiles, a faster detector and small faces missed")
    parser.add_argument("--preset", default="tiny", help="the model: tiny (trained on the workload), or a real "
                        "preset with its initial weights (dual_stream, full: EfficientNet-B4 at 256 px)")
    parser.add_argument("--no-peers", action="store_true", help="leave out (d) and (e), the peers' front-ends")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    footage = args.workload == "footage"
    count = 16 if footage else int(args.videos)
    workload = build_workload(args.root, videos=count)
    hd = args.workload == "hd"
    videos = (footage_videos(Path(args.videos)) if footage else hd_videos(args.root, count=min(count, 6)) if hd
              else workload.videos)
    if args.preset != "tiny":
        from dfguard.train.config import load_preset

        model = load_preset(args.preset).model
        servable = model.rgb.parts and model.freq.use_map and model.freq.use_vector
        workload = untrained_workload(args.root, args.preset, servable=servable)
    repository = workload.repository if args.preset == "tiny" or servable else None
    spec = None
    if args.min_face_px != MIN_FACE_PX and repository is not None:  # the same model, another face search
        from dfguard.train.export import export_repository

        repository = repository.with_name(f"{repository.name}-min-face-{args.min_face_px:g}")
        spec = export_repository(workload.checkpoint, repository, template=TEMPLATE,
                                 faces=DetectorConfig(min_face_px=args.min_face_px))
    result = run(videos * args.rounds, workload.checkpoint, repository, args.num_frames, args.concurrency, spec,
                 peers=not args.no_peers)
    obvious, local, best = result.pipelines[0], result.pipelines[1], result.best_ensemble
    peer = fastest(result.peers)
    model_text = ("the `tiny` preset (128-px crops)" if args.preset == "tiny" else
                  f"the `{args.preset}` preset with its initial weights") + f", faces from {args.min_face_px:g} px"
    rows = result.limits + result.pipelines[:1] + result.peers + result.pipelines[1:]
    body = (table(rows, obvious, result.limit)
            + f"\n\n{len(videos)} {WORKLOADS[args.workload]} scored {args.rounds}× by each pipeline, "
            f"{args.num_frames} frames sampled per video, {model_text}, {os.cpu_count()} cores. "
            f"(b)/(a) = {local.videos_per_second / obvious.videos_per_second:.2f}×"
            + (f", best (c)/(a) = {best.videos_per_second / obvious.videos_per_second:.2f}× at {best.concurrency} "
               f"in flight, {100 * best.videos_per_second / result.limit.videos_per_second:.0f} % of the "
               "decode-bound limit" if best else ", no (c): the ensemble serves presets with parts, DCT map and "
               "vector (tiny, full)")
            + ". Not the same work: (a) looks for the largest face of each frame with short-range BlazeFace on the "
            f"whole frame; (b) and (c) for every face of {args.min_face_px:g} px and up with full range on the whole "
            f"frame, on its tiles in every {DetectorConfig().search_every}th sampled frame of a shot (and its first "
            "and last) and on windows around the faces found there in the frames between, "
            "tracked (faces/s counts the faces each scored)"
            + (f"; (d) and (e) do that work with the peers' front-ends (every face of every sampled frame, the same "
               f"crops and model): best (c) / best of them = {best.videos_per_second / peer.videos_per_second:.2f}× "
               "(recall of each front-end on scenes: `python -m benchmarks.scenes`)" if peer and best else "")
            + ". GPU rows: unmeasured (no GPU machine at hand).")
    if best:
        body += (f"\n\nWhere the ensemble's time goes at {best.concurrency} in flight (Triton's statistics over "
                 "that run; face_finder's time includes its BLS calls to face_detector, whose requests they "
                 f"are):\n\n{result.statistics}")
    print(body)
    if not args.no_write:
        key = "pipeline-cpu" + ("-hd" if hd else "-footage" if footage else "") + (
            "" if args.preset == "tiny" else f"-{args.preset}") + (
            "" if args.min_face_px == MIN_FACE_PX else f"-min-face-{args.min_face_px:g}")
        title = ("Pipeline on HD uploads (CPU)" if hd else "Pipeline on real HD footage (CPU)" if footage else
                 "Pipeline: obvious script vs in-process vs Triton ensemble (CPU)") + (
            "" if args.preset == "tiny" else f", {args.preset} preset") + (
            "" if args.min_face_px == MIN_FACE_PX else f", faces from {args.min_face_px:g} px")
        write_section(key, title, body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
