"""Live 720p streams on this machine: how many ``dfguard watch`` holds in real time, and how soon it alerts.

Each stream is 720p H.264 at 25 frames/s sent live over UDP on loopback: two people filmed by the virtual camera
(faces of 90-110 px, the sizes the workload's tiny model was trained at; on the HD workload's mixed sizes it
misreads real faces), real for ``--segment`` seconds, then with one of them forged, in turn (played forwards and
backwards, so no loop point reads as a cut). The clip is encoded once; each
stream's sender only remuxes its packets at their own pace, so the machine's cores go to the watchers and the
server. For 1, 2, 3... streams at once, every stream has its own ``Watch`` (in this process, each with its own
gRPC client) against the served ``deepfake_video``; a count of streams is held when no window is dropped. Reported:
windows scored and dropped, window end → answer latency p50/p95, and frame-to-alert latency (the first forged
frame sent → the alert raised) p50/p95 with how many forged entrances raised one, and a picture of one watch.

    python -m benchmarks.live [--streams 1 2 3 4] [--seconds 40] [--preset tiny]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmarks.results import write_section
from benchmarks.workload import DEFAULT_ROOT, SEEN, build_workload, untrained_workload
from dfguard.video import decode_frames, probe_video

FPS = 25
HELD_GROWTH = 0.5  # seconds of latency growth over a run below which a watch keeps up with real time
FIGURES = Path(__file__).with_name("figures")


def there_and_back(frames: np.ndarray, count: int) -> list[np.ndarray]:
    """``count`` frames of a clip played forwards and backwards in turn."""
    cycle = [*frames, *frames[-2:0:-1]]
    return [cycle[k % len(cycle)] for k in range(count)]


def people_clips(root: Path) -> tuple[Path, Path]:
    """Build (or reuse) a 4-s 720p scene of two people, real, and the same scene with one of them forged."""
    from dfguard.train.scenes import make_people_video
    from dfguard.train.synthetic import VideoSpec

    folder = Path(root) / "live"
    folder.mkdir(parents=True, exist_ok=True)
    spec = VideoSpec(width=1280, height=720, frames=4 * FPS, fps=FPS, keyframe_interval=FPS, crf=18)
    paths = []
    for name, family in (("real", None), ("forged", SEEN[0])):
        path = folder / f"{name}.mp4"
        if not path.exists():
            make_people_video(path, spec, np.random.default_rng(7), people=2, family=family, min_face_px=90,
                              max_face_px=110)
        paths.append(path)
    return paths[0], paths[1]


def clip_frames(path: Path, seconds: float) -> list[np.ndarray]:
    """``seconds`` at 25 frames/s of a video's frames (every frame, at most 10 s of it), played back and forth."""
    data = path.read_bytes()
    frames = decode_frames(data, np.arange(min(probe_video(data).frames, 250)))
    return there_and_back(frames, round(seconds * FPS))


def encode_stream(real: Path, forged: Path, segment: float, seconds: float, out: Path) -> list[float]:
    """Write the stream's MPEG-TS (real, forged, real, ... ``segment`` s each); the source times forged faces
    enter."""
    import av

    real_frames, forged_frames = clip_frames(real, segment), clip_frames(forged, segment)
    entrances, frames = [], []
    while len(frames) < seconds * FPS:
        if (len(frames) // round(segment * FPS)) % 2:
            entrances.append(len(frames) / FPS)
        part = forged_frames if (len(frames) // round(segment * FPS)) % 2 else real_frames
        frames += part
    with av.open(str(out), "w", format="mpegts") as container:
        stream = container.add_stream("libx264", rate=FPS, options={"crf": "18", "preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = 1280, 720, "yuv420p"
        stream.codec_context.gop_size = FPS
        for frame in frames[:round(seconds * FPS)]:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame[:720, :1280]),
                                                                   format="rgb24")))
        container.mux(stream.encode())
    return entrances


def send(clip: Path, url: str, started: list[float], stop: threading.Event) -> None:
    """Remux the clip's packets to ``url`` as they fall due; ``started`` gets the wall time of its first one."""
    import av

    with av.open(str(clip)) as source, av.open(url, "w", format="mpegts") as sink:
        video = source.streams.video[0]
        out = sink.add_stream_from_template(video)
        began = time.monotonic()
        started.append(began)
        for packet in source.demux(video):
            if packet.dts is None or stop.is_set():
                continue
            time.sleep(max(0.0, began + float(packet.dts * packet.time_base) - time.monotonic()))
            packet.stream = out
            sink.mux(packet)


@dataclass
class StreamRun:
    """One stream's watch: its lines with the wall time each came, and when its sender started."""

    lines: list[tuple[float, dict]] = field(default_factory=list)
    started: list[float] = field(default_factory=list)
    summary: object = None


def free_udp_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def watch_streams(count: int, clip: Path, grpc_url: str, seconds: float) -> list[StreamRun]:
    """``count`` streams of ``clip`` watched at once for about ``seconds``."""
    from dfguard.client.grpc_client import DeepfakeClient
    from dfguard.watch import Watch

    runs, watches, threads, senders, stop = [], [], [], [], threading.Event()
    for _ in range(count):
        run, port = StreamRun(), free_udp_port()
        client = DeepfakeClient(grpc_url, timeout=60)
        watch = Watch(f"udp://127.0.0.1:{port}", lambda data, frames, c=client: c.score_video(data, frames),
                      emit=lambda line, r=run: r.lines.append((time.monotonic(), line)))
        runs.append(run)
        watches.append(watch)
        threads.append(threading.Thread(target=lambda w=watch, r=run: setattr(r, "summary", w.run())))
        senders.append(threading.Thread(target=send, args=(clip, f"udp://127.0.0.1:{port}?pkt_size=1316",
                                                           run.started, stop)))
    for thread in threads:
        thread.start()
    time.sleep(2.0)  # every watcher listens before its source sends
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()
    time.sleep(4.0)  # the last windows are scored
    for watch in watches:
        watch.stop()
    for thread in threads:
        thread.join()
    return runs


def alert_latencies(run: StreamRun, entrances: list[float]) -> tuple[list[float], int]:
    """Seconds from each forged entrance's first frame sent to the first alert after it, and how many of the
    entrances raised none before the next one."""
    alerts = [(wall, line) for wall, line in run.lines if line["event"] == "alert"]
    latencies, missed = [], 0
    for k, entrance in enumerate(entrances):
        until = entrances[k + 1] if k + 1 < len(entrances) else float("inf")
        raised = [wall for wall, line in alerts if entrance < line["time"] <= until]
        if raised:
            latencies.append(raised[0] - (run.started[0] + entrance))
        else:
            missed += 1
    return latencies, missed


def growth(latencies: list[float]) -> float:
    """How much a watch's latency grew over the run: the median of its last third of windows minus its first
    third's (a watch falling behind real time grows without bound; one that keeps up does not)."""
    third = len(latencies) // 3
    return float(np.median(latencies[-third:]) - np.median(latencies[:third])) if third else 0.0


def main(argv: list[str] | None = None) -> int:
    """Measure, print and record the table; draw one watch."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 2, 3, 4])
    parser.add_argument("--seconds", type=float, default=40.0, help="seconds each stream plays")
    parser.add_argument("--segment", type=float, default=10.0, help="seconds of real, then of forged, in turn")
    parser.add_argument("--preset", default="tiny", help="tiny (trained on the workload) or full (its initial "
                        "weights: speed only, its alerts mean nothing)")
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    from dfguard.serving.server import TritonServer
    from dfguard.visualize import plot_watch

    workload = build_workload(args.root) if args.preset == "tiny" else untrained_workload(
        args.root, args.preset, servable=True)
    real, forged = people_clips(args.root)
    rows = []
    with tempfile.TemporaryDirectory() as scratch, TritonServer(workload.repository) as server:
        clip = Path(scratch) / "live.ts"
        entrances = encode_stream(real, forged, args.segment, args.seconds, clip)
        drawn = None
        for count in args.streams:
            runs = watch_streams(count, clip, server.grpc_url, args.seconds)
            summaries = [run.summary for run in runs]
            latency = [x for s in summaries for x in s.latencies]
            alerts = [alert_latencies(run, entrances) for run in runs]
            to_alert = [x for found, _ in alerts for x in found]
            missed = sum(m for _, m in alerts)
            false = sum(1 for run in runs for _, line in run.lines if line["event"] == "alert"
                        and not any(e < line["time"] <= e + args.segment for e in entrances))
            rows.append((count, sum(s.windows for s in summaries), sum(s.dropped for s in summaries),
                         sum(s.failed for s in summaries), latency, to_alert, missed, false,
                         max(growth(s.latencies) for s in summaries)))
            print(f"{count} streams: {rows[-1][1]} windows, {rows[-1][2]} dropped", flush=True)
            drawn = drawn or runs[0]
        figure = FIGURES / f"live_watch_{args.preset}.png"
        plot_watch([line for _, line in drawn.lines], figure, entrances=entrances,
                   title=f"one 720p live stream, watched ({args.preset} preset): forged from the dotted lines on")
    held = max((r[0] for r in rows if r[2] == 0 and r[8] < HELD_GROWTH), default=0)
    pct = lambda xs, q: f"{np.percentile(xs, q):.2f}" if xs else "–"  # noqa: E731
    table = ["| streams at once | windows | dropped | failed | window end → answer p50 / p95 (s) | "
             "latency growth (s) | forged frame → alert p50 / p95 (s) | entrances alerted | alerts on real video |",
             "|---|---|---|---|---|---|---|---|---|"]
    trained = args.preset == "tiny"  # another preset has its initial weights: its alerts mean nothing
    for count, windows, dropped, failed, latency, to_alert, missed, false, grown in rows:
        alerting = (f"{pct(to_alert, 50)} / {pct(to_alert, 95)} | {len(to_alert)}/{len(to_alert) + missed} | {false}"
                    if trained else "– | – | –")
        table.append(f"| {count} | {windows} | {dropped} | {failed} | {pct(latency, 50)} / {pct(latency, 95)} | "
                     f"{grown:+.2f} | {alerting} |")
    body = ("\n".join(table) + f"\n\nHeld in real time (no window dropped, latency growing less than "
            f"{HELD_GROWTH:g} s from the first third of a stream's windows to the last): **{held} stream(s)** of "
            f"720p at {FPS} frames/s, {os.cpu_count()} cores, the `{args.preset}` preset, windows of 2 s with 8 frames "
            f"scored, alert after 2 windows at P(fake) ≥ 0.5. Each stream plays {args.seconds:g} s: two people at "
            f"720p (faces of 90-110 px), real, then one of them forged ({SEEN[0]}), in turns of {args.segment:g} s, "
            "H.264 over UDP on loopback (encoded once, sent by remuxing). A forged frame → alert latency of two "
            "windows (4 s) is the rule's floor; the rest is window alignment and scoring. Picture: "
            f"`benchmarks/figures/{figure.name}`.")
    print(body)
    if not args.no_write:
        write_section(f"live-{args.preset}", f"Live streams (dfguard watch), {args.preset} preset", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
