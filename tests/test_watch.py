"""dfguard watch: windows cut from a live source, tracks kept across windows, and the alert, on loopback only."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import DFGUARD

from dfguard.answer import Face, Score, Track
from dfguard.video import decode_frames, probe_video
from dfguard.watch import Sink, SourceClock, TrackJoiner, Watch, WatchConfig, Window, WindowCutter, window_clip

FPS = 25


def test_windows_keep_frames_spread_evenly_over_the_source_clock():
    cutter, windows = WindowCutter(WatchConfig(window=2.0, frames=8)), []
    for k in range(5 * FPS):
        closed = cutter.add(k / FPS, lambda k=k: np.full((4, 4, 3), k, np.uint8))
        windows += [closed] if closed else []
    windows.append(cutter.close())
    assert [(w.index, w.start, w.end) for w in windows] == [(0, 0.0, 2.0), (1, 2.0, 4.0), (2, 4.0, 6.0)]
    for window in windows[:2]:  # the instants 0.125, 0.375, ... s of each window, to the nearest frame
        assert np.allclose(window.times, window.start + 0.125 + 0.25 * np.arange(8), atol=0.5 / FPS)
        assert [int(f[0, 0, 0]) for f in window.frames] == [round(t * FPS) for t in window.times]
    assert len(windows[2].frames) == 4  # the last second of the source: half a window


def test_the_source_clock_stays_steady_through_missing_and_jumping_timestamps():
    clock = SourceClock(25.0)
    stamps = [100.0, 100.04, None, 100.12, 3.0, 3.04, 500.0, 500.04]  # a restart at 3.0, a stall to 500
    assert np.allclose([clock.seconds(t) for t in stamps], [0.0, 0.04, 0.08, 0.12, 0.16, 0.20, 0.24, 0.28])
    assert clock.seconds(500.12) == pytest.approx(0.36)  # a gap of a frame within the stream is kept


def test_a_window_goes_to_the_server_as_a_clip_that_decodes_to_its_frames_exactly():
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (90, 160, 3), dtype=np.uint8) for _ in range(8)]
    clip = window_clip(Window(0, 0.0, 2.0, frames, [0.25 * k for k in range(8)]))
    assert probe_video(clip).frames == 8
    np.testing.assert_array_equal(decode_frames(clip, np.arange(8)), np.stack(frames))


def test_tracks_continue_across_windows_by_position_and_size():
    joiner = TrackJoiner()
    box = lambda x, side=100: np.array([x, 100, x + side, 100 + side], float)  # noqa: E731
    first = joiner.join(0, {0: box(100), 1: box(600)}, {0: box(120), 1: box(600)})
    assert [first[k].id for k in (0, 1)] == [0, 1]
    second = joiner.join(1, {0: box(610), 1: box(140), 2: box(1200)}, {0: box(610), 1: box(150), 2: box(1200)})
    assert [second[k].id for k in (0, 1, 2)] == [1, 0, 2]  # the new person far away gets a new id
    third = joiner.join(2, {0: box(150, side=300)}, {0: box(150, side=300)})
    assert third[0].id == 3  # three times the size: not the same face
    fourth = joiner.join(4, {0: box(610)}, {0: box(610)})
    assert fourth[0].id == 4  # a window with nothing in between ends every track


def scores_for(values: list[float]) -> list[Score]:
    """One answer per window: one face of one track, scoring ``values[k]`` in window k."""
    return [Score(v, "fake" if v >= 0.5 else "real", np.array([v], np.float32), np.array([0]), "m", "1", 1,
                  (Face(0, (100.0, 100.0, 200.0, 200.0), 0, v),), (Track(0, v, 1, 0, 0),)) for v in values]


def test_an_alert_comes_after_k_windows_at_the_threshold_and_once_per_run(tmp_path):
    """A track at 0.2, 0.7, 0.3, 0.8, 0.9, 0.95, 0.1, 0.6, 0.7: with K = 2 alerts after windows 4 and 8 only (a
    run broken by a low window starts again), and the lines say so."""
    source = tmp_path / "still.mp4"
    answers = iter(scores_for([0.2, 0.7, 0.3, 0.8, 0.9, 0.95, 0.1, 0.6, 0.7]))
    lines: list[dict] = []
    watch = Watch(str(source), lambda clip, frames: next(answers), WatchConfig(alert_after=2), lines.append)
    for k in range(9):
        watch.score_window(Window(k, 2.0 * k, 2.0 * k + 2, [np.zeros((8, 8, 3), np.uint8)], [2.0 * k]))
    alerts = [line for line in lines if line["event"] == "alert"]
    assert [(a["window"], a["since"], a["time"], a["windows"]) for a in alerts] == [(4, 6.0, 10.0, 2),
                                                                                    (8, 14.0, 18.0, 2)]
    assert [line["tracks"][0]["id"] for line in lines if line["event"] == "window"] == [0] * 9
    assert watch.summary.alerts == 2 and watch.summary.scored == 9


def test_scoring_behind_drops_the_oldest_window_and_counts_it():
    lines: list[dict] = []
    watch = Watch("unused", lambda clip, frames: None, WatchConfig(queue=2), lines.append)
    for k in range(5):
        watch.queue(Window(k, 2.0 * k, 2.0 * k + 2))
    assert [w.index for w in watch.waiting] == [3, 4] and watch.summary.dropped == 3
    assert [line["window"] for line in lines if line["event"] == "dropped"] == [0, 1, 2]


def test_alerts_are_posted_to_the_webhook_and_a_dead_webhook_is_reported_not_fatal(tmp_path):
    import http.server

    received: list[dict] = []

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    lines: list[str] = []
    alert = {"event": "alert", "track": 1, "score": 0.97, "time": 10.0}
    try:
        sink = Sink(tmp_path / "watch.jsonl", f"http://127.0.0.1:{server.server_port}/alerts", write=lines.append)
        sink({"event": "window", "window": 0})
        sink(alert)
        sink.close()
    finally:
        server.shutdown()
        server.server_close()
    assert received == [alert]  # windows are not posted, alerts are
    assert [json.loads(line) for line in (tmp_path / "watch.jsonl").read_text().splitlines()] == [
        {"event": "window", "window": 0}, alert]
    dead = Sink(webhook=f"http://127.0.0.1:{server.server_port}/alerts", write=lines.append)
    dead(alert)  # the receiver is gone: reported on the next line, the watch goes on
    assert json.loads(lines[-1])["event"] == "webhook_failed" and len(lines) == 4


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def publish(url: str, frames: list[np.ndarray], stop: threading.Event | None = None, *,
            container_format: str = "mpegts", paced: bool = True, options: dict | None = None) -> None:
    """Send ``frames`` live as MPEG-TS over UDP at 25 frames/s (H.264, lossless so that the model sees the
    forgery), or write them unpaced in another container (an HLS playlist and its segments)."""
    import av

    with av.open(url, "w", format=container_format, options=options or {}) as container:
        stream = container.add_stream("libx264", rate=FPS, options={"qp": "0", "preset": "ultrafast",
                                                                     "tune": "zerolatency"})
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv444p"
        stream.codec_context.gop_size = FPS  # a key frame a second, as live encoders send: a late joiner can start
        began = time.monotonic()
        for k, frame in enumerate(frames):
            if stop is not None and stop.is_set():
                break
            if paced:
                time.sleep(max(0.0, began + k / FPS - time.monotonic()))
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def looped(path: Path, seconds: float) -> list[np.ndarray]:
    """``seconds`` of a short video played forwards and backwards in turn (a loop would jump back: a cut)."""
    frames = decode_frames(path.read_bytes(), np.arange(probe_video(path.read_bytes()).frames))
    there_and_back = [*frames, *frames[-2:0:-1]]
    return [there_and_back[k % len(there_and_back)] for k in range(round(seconds * FPS))]


def watch_process(url: str, server_url: str, out: Path) -> subprocess.Popen:
    return subprocess.Popen([DFGUARD, "watch", url, "--url", server_url, "--out", str(out), "--quiet",
                             "--window", "2", "--frames", "8", "--alert-after", "2", "--source-timeout", "3"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def stop(process: subprocess.Popen) -> str:
    """SIGTERM, as an orchestrator stops it; its summary line."""
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    return stderr


def lines_of(out: Path) -> list[dict]:
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_a_forged_person_entering_a_live_stream_raises_the_alert_within_two_windows(served, two_people, tmp_path):
    """Two people live over UDP: real for 6 s, then one of them forged. No alert before second 6; the alert names
    the forged person's track, within two 2-s windows of the entrance; each person keeps one track across all
    windows (measured: the forged track 0.06-0.17 before the entrance, 0.98 in both windows after it)."""
    port, out = free_udp_port(), tmp_path / "watch.jsonl"
    watcher = watch_process(f"udp://127.0.0.1:{port}", served.grpc_url, out)
    time.sleep(2.0)  # the watcher listens before the source starts sending
    publish(f"udp://127.0.0.1:{port}?pkt_size=1316",
            looped(two_people["real"].path, 6.0) + looped(two_people["forged"].path, 6.0))
    time.sleep(3.0)  # the last window is scored
    summary = stop(watcher)
    lines = lines_of(out)
    windows = [line for line in lines if line["event"] == "window"]
    alerts = [line for line in lines if line["event"] == "alert"]
    assert len(windows) >= 5 and "0 failed" in summary and "0 dropped" in summary
    assert alerts and all(a["time"] > 6.0 for a in alerts), alerts  # no window ending before the entrance
    assert alerts[0]["time"] <= 6.0 + 2 * 2.0 + 0.1 and alerts[0]["since"] >= 6.0 - 0.1
    forged = alerts[0]["track"]
    after = [w for w in windows if w["start"] >= 6.0 - 0.1]
    assert all(any(t["id"] == forged for t in w["tracks"]) for w in after), after
    assert {t["id"] for w in windows for t in w["tracks"]} == {0, 1}  # two people: a track each, not per window


def test_the_real_person_alone_raises_nothing_and_a_killed_source_is_reopened(served, two_people, tmp_path):
    port, out = free_udp_port(), tmp_path / "watch.jsonl"
    watcher = watch_process(f"udp://127.0.0.1:{port}", served.grpc_url, out)
    time.sleep(2.0)
    stopped = threading.Event()
    sender = threading.Thread(target=publish, args=(f"udp://127.0.0.1:{port}?pkt_size=1316",
                                                    looped(two_people["real"].path, 8.0), stopped))
    sender.start()
    time.sleep(4.5)
    stopped.set()  # the source dies mid-stream
    sender.join()
    deadline = time.monotonic() + 30
    while not any(line["event"] == "reconnect" for line in lines_of(out)) and time.monotonic() < deadline:
        time.sleep(0.5)
    publish(f"udp://127.0.0.1:{port}?pkt_size=1316", looped(two_people["real"].path, 4.5))
    time.sleep(3.0)
    summary = stop(watcher)
    lines = lines_of(out)
    reconnects = [line for line in lines if line["event"] == "reconnect"]
    windows = [line for line in lines if line["event"] == "window"]
    assert reconnects and "0 reconnects" not in summary, summary
    assert not [line for line in lines if line["event"] == "alert"]
    assert len(windows) >= 4 and all(w["verdict"] != "fake" for w in windows), windows
    assert any(w["start"] >= reconnects[0]["after"] for w in windows)  # windows go on after the source is back
    assert [w["window"] for w in windows] == sorted(w["window"] for w in windows)


def test_an_hls_playlist_is_read_at_its_own_pace_and_the_watch_ends_with_it(served, two_people, tmp_path):
    """A finished HLS playlist of 2-s segments in a local folder (real for 4 s, then forged for 4 s): read at its
    own pace, no reconnect, the alert after the entrance, and the watch ends on its own with a summary."""
    playlist = tmp_path / "hls" / "index.m3u8"
    playlist.parent.mkdir()
    publish(str(playlist), looped(two_people["real"].path, 4.0) + looped(two_people["forged"].path, 4.0),
            container_format="hls", paced=False, options={"hls_time": "2", "hls_playlist_type": "vod"})
    assert len(list(playlist.parent.glob("*.ts"))) >= 3
    out = tmp_path / "watch.jsonl"
    began = time.monotonic()
    watched = subprocess.run([DFGUARD, "watch", str(playlist), "--url", served.grpc_url, "--out", str(out),
                              "--quiet"], capture_output=True, text=True, timeout=120)
    assert watched.returncode == 0, watched.stderr
    assert time.monotonic() - began >= 8.0  # at the playlist's pace, not as fast as it decodes
    lines = lines_of(out)
    alerts = [line for line in lines if line["event"] == "alert"]
    assert not [line for line in lines if line["event"] == "reconnect"]
    assert [w["window"] for w in lines if w["event"] == "window"] == [0, 1, 2, 3]
    assert len(alerts) == 1 and alerts[0]["since"] >= 4.0 - 0.1 and alerts[0]["time"] <= 8.0 + 0.1, alerts
    assert "4 windows: 4 scored, 0 dropped" in watched.stderr and "1 alerts" in watched.stderr
