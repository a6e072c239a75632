"""``dfguard watch SOURCE``: a live source scored as it plays, window by window, with an alert when a forged face
stays.

A reader thread opens the source with FFmpeg (PyAV: rtsp://, rtmp://, srt://, udp://, an HLS playlist, a device, a
file read at its own pace), decodes it as it comes and cuts it into windows of ``window`` seconds of the source's
clock, keeping ``frames`` of each, spread evenly over it. The scorer (the calling thread) sends each window to the
served ``deepfake_video`` as a short lossless clip of those frames, links the window's tracks to those of the
windows before it (by position and size, ``TrackConfig``'s ``max_shift`` and ``max_scale``, from a track's last face
to its first face in the next window), and writes one JSON line per window. A track whose window score stays at or
above ``fake_at`` for ``alert_after`` windows in a row raises one alert (a JSON line, and a POST to a webhook).

Windows wait in a queue of ``queue`` places: when scoring falls behind, the oldest waiting window is dropped and
counted, never queued without bound. A source that fails or ends is opened again after a backoff (doubling to
``max_backoff``), except a plain file, which ends the watch; ``stop()`` (Ctrl-C, SIGTERM) ends it after the window
being scored, with a summary.
"""

from __future__ import annotations

import io
import json
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dfguard.answer import Score
from dfguard.faces.settings import TrackConfig


@dataclass(frozen=True)
class WatchConfig:
    """How a source is cut and when an alert is raised."""

    window: float = 2.0  # seconds of the source per window
    frames: int = 8  # frames scored per window, spread evenly over it
    fake_at: float = 0.5  # a track's window score at or above this counts towards an alert
    alert_after: int = 2  # windows in a row at or above fake_at before the alert
    queue: int = 2  # windows waiting to be scored; when full, the oldest is dropped
    max_backoff: float = 30.0  # seconds between tries to reopen a failed source, at most
    open_timeout: float = 10.0  # seconds to wait for a source to open or send data

    def __post_init__(self) -> None:
        if not (self.window > 0 and self.frames >= 1 and 0 < self.fake_at <= 1 and self.alert_after >= 1
                and self.queue >= 1):
            raise ValueError(f"window > 0, frames ≥ 1, 0 < fake_at ≤ 1, alert_after ≥ 1 and queue ≥ 1: {self}")


@dataclass
class Window:
    """``frames`` (RGB uint8) sampled from ``[start, end)`` seconds of the source, at ``times``."""

    index: int
    start: float
    end: float
    frames: list[np.ndarray] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    closed_at: float = 0.0  # time.monotonic() when its last frame was read


class WindowCutter:
    """Frames in, windows out: of each ``window`` seconds it keeps the frame nearest each of ``frames`` instants
    spread evenly over it (so a window needs no more memory than its kept frames)."""

    def __init__(self, config: WatchConfig, first_index: int = 0) -> None:
        self.config, self.next_index = config, first_index
        self.current: Window | None = None
        self.best: list[tuple[float, float, np.ndarray] | None] = []

    def add(self, time_s: float, frame: Callable[[], np.ndarray]) -> Window | None:
        """One decoded frame at ``time_s`` seconds (``frame`` converts it, called only when it is kept); returns
        the window it closed, if any."""
        closed = None
        if self.current is not None and time_s >= self.current.end:
            closed = self.close()
        if self.current is None:
            start = time_s if closed is None else max(closed.end, time_s - (time_s - closed.end) % self.config.window)
            self.current = Window(self.next_index, start, start + self.config.window)
            self.next_index += 1
            self.best = [None] * self.config.frames
        step = self.config.window / self.config.frames
        slot = min(int((time_s - self.current.start) / step), self.config.frames - 1)
        distance = abs(time_s - (self.current.start + (slot + 0.5) * step))
        if self.best[slot] is None or distance < self.best[slot][0]:
            self.best[slot] = (distance, time_s, frame())
        return closed

    def close(self) -> Window | None:
        """The window being cut, with its kept frames (None when there is none)."""
        window, self.current = self.current, None
        if window is None:
            return None
        kept = [b for b in self.best if b is not None]
        window.times, window.frames = [t for _, t, _ in kept], [f for _, _, f in kept]
        window.closed_at = time.monotonic()
        return window if kept else None


class SourceClock:
    """Seconds since a source's first frame, from its frames' timestamps, kept steady the way live sources are not:
    a frame without a timestamp comes one frame after the last, and a jump back (an encoder restarted, a
    timestamp wrapped) or forward by more than ``max_jump`` seconds (a stall) continues one frame after the last."""

    def __init__(self, rate: float, max_jump: float = 10.0) -> None:
        self.step, self.max_jump = 1.0 / max(rate, 1e-3), max_jump
        self.origin: float | None = None
        self.last = -self.step

    def seconds(self, timestamp: float | None) -> float:
        """The source time of the next frame, whose timestamp (seconds, or None) is ``timestamp``."""
        following = self.last + self.step
        if timestamp is None:
            self.last = following
            return following
        if self.origin is None:
            self.origin = timestamp - following
        elapsed = timestamp - self.origin
        if not self.last - self.step / 2 < elapsed <= self.last + self.max_jump:
            self.origin, elapsed = timestamp - following, following
        self.last = elapsed
        return elapsed


def window_clip(window: Window) -> bytes:
    """The window's frames as a lossless clip (FFV1 in Matroska) that ``deepfake_video`` decodes exactly."""
    import av

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="matroska") as container:
        height, width = window.frames[0].shape[:2]
        stream = container.add_stream("ffv1", rate=max(1, round(len(window.frames) / (window.end - window.start))))
        stream.width, stream.height, stream.pix_fmt = width - width % 2, height - height % 2, "bgr0"
        for frame in window.frames:
            picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame[:stream.height, :stream.width]),
                                                 format="rgb24")
            container.mux(stream.encode(picture))
        container.mux(stream.encode())
    return buffer.getvalue()


@dataclass
class _Global:
    """A track across windows: its id, its last box, and its run of windows at or above the alert score."""

    id: int
    box: np.ndarray
    window: int
    streak: int = 0
    since: float = 0.0
    alerted: bool = False


class TrackJoiner:
    """Gives each window's tracks the ids of the tracks they continue: a window track continues a track of the
    window just before when its first face is within ``max_scale`` in size and ``max_shift`` face sides in position
    of that track's last face (cheapest first, each at most once)."""

    def __init__(self, tracks: TrackConfig = TrackConfig()) -> None:
        self.tracks, self.open, self.next_id = tracks, [], 0

    def join(self, window: int, firsts: dict[int, np.ndarray], lasts: dict[int, np.ndarray]) -> dict[int, _Global]:
        """``firsts``/``lasts``: each window track's first and last box; returns window track → its global track."""
        previous = [t for t in self.open if t.window == window - 1]
        pairs = sorted((cost, local, k) for local, box in firsts.items() for k, track in enumerate(previous)
                       if (cost := self.tracks.shift(track.box, box)) is not None)
        joined: dict[int, _Global] = {}
        for _, local, k in pairs:
            if local in joined or any(g is previous[k] for g in joined.values()):
                continue
            joined[local] = previous[k]
        for local in firsts:
            if local not in joined:
                joined[local] = _Global(self.next_id, firsts[local], window)
                self.next_id += 1
        for local, track in joined.items():
            track.box, track.window = lasts[local], window
        self.open = list({id(t): t for t in joined.values()}.values())
        return joined


@dataclass
class Summary:
    """What a watch did."""

    windows: int = 0
    scored: int = 0
    dropped: int = 0
    failed: int = 0
    alerts: int = 0
    reconnects: int = 0
    latencies: list[float] = field(default_factory=list)

    def text(self) -> str:
        """One line for the end of a watch."""
        latency = (f"; window end to answer p50 {np.percentile(self.latencies, 50):.2f} s, p95 "
                   f"{np.percentile(self.latencies, 95):.2f} s" if self.latencies else "")
        return (f"{self.windows} windows: {self.scored} scored, {self.dropped} dropped (scoring behind), "
                f"{self.failed} failed; {self.alerts} alerts; {self.reconnects} reconnects{latency}")


class Watch:
    """Watches one source: ``run()`` until the source ends (a file), ``stop()`` is called, or forever."""

    def __init__(self, source: str, score: Callable[[bytes, int], Score], config: WatchConfig = WatchConfig(),
                 emit: Callable[[dict], None] = print, tracks: TrackConfig = TrackConfig()) -> None:
        self.source, self.score, self.config, self.emit = source, score, config, emit
        self.is_file = Path(source).is_file()  # read at its pace, and its end ends the watch
        self.joiner = TrackJoiner(tracks)
        self.summary = Summary()
        self.waiting: deque[Window] = deque()
        self.ready = threading.Condition()
        self.stopping = threading.Event()
        self.reader_done = False

    def stop(self) -> None:
        """End the watch after the window being scored."""
        self.stopping.set()
        with self.ready:
            self.ready.notify_all()

    def run(self) -> Summary:
        """Read and score until the end; the summary."""
        reader = threading.Thread(target=self.read, name="watch-reader", daemon=True)
        reader.start()
        while True:
            with self.ready:
                while not self.waiting and not self.reader_done and not self.stopping.is_set():
                    self.ready.wait(0.5)
                if self.stopping.is_set() or (not self.waiting and self.reader_done):
                    break
                window = self.waiting.popleft()
            self.score_window(window)
        self.stopping.set()
        reader.join(timeout=self.config.open_timeout + 1)
        return self.summary

    def queue(self, window: Window) -> None:
        """Put a closed window in line, dropping the oldest waiting one when the line is full."""
        with self.ready:
            self.summary.windows += 1
            if len(self.waiting) >= self.config.queue:
                dropped = self.waiting.popleft()
                self.summary.dropped += 1
                self.emit({"event": "dropped", "source": self.source, "window": dropped.index,
                           "start": round(dropped.start, 3), "end": round(dropped.end, 3),
                           "dropped": self.summary.dropped})
            self.waiting.append(window)
            self.ready.notify_all()

    def read(self) -> None:
        """The reader thread: open, decode, cut; reopen with backoff when the source fails or ends."""
        backoff, next_index, offset = 1.0, 0, 0.0
        try:
            while not self.stopping.is_set():
                cutter = WindowCutter(self.config, next_index)
                try:
                    for time_s, frame in self.frames():
                        window = cutter.add(time_s + offset, frame)
                        if window is not None:
                            self.queue(window)
                            backoff = 1.0
                        if self.stopping.is_set():
                            return
                    error = None
                except Exception as failure:  # FFmpeg errors, a dropped connection: reopen
                    error = failure
                last = cutter.close()
                if last is not None:
                    self.queue(last)
                    offset = last.end
                next_index = cutter.next_index
                if self.is_file and error is None:
                    return  # a file has an end; a live source that ends is reopened
                self.summary.reconnects += 1
                self.emit({"event": "reconnect", "source": self.source, "after": round(offset, 3),
                           "in_seconds": backoff,
                           "error": None if error is None else f"{type(error).__name__}: {error}"})
                if self.stopping.wait(backoff):
                    return
                backoff = min(backoff * 2, self.config.max_backoff)
        finally:
            with self.ready:
                self.reader_done = True
                self.ready.notify_all()

    def frames(self) -> Iterator[tuple[float, Callable[[], np.ndarray]]]:
        """The source's video frames as (seconds from its first frame, a function giving the RGB frame); a file
        is read at its own pace, as a live source arrives."""
        import av

        # PyAV's own timeout interrupts FFmpeg's read when no data comes, whatever the protocol
        with av.open(self.source, timeout=self.config.open_timeout) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            clock, began = SourceClock(float(stream.average_rate or stream.guessed_rate or 25)), time.monotonic()
            for frame in container.decode(stream):
                seconds = clock.seconds(frame.time)
                if self.is_file:
                    time.sleep(max(0.0, began + seconds - time.monotonic()))
                yield seconds, lambda frame=frame: frame.to_ndarray(format="rgb24")
                if self.stopping.is_set():
                    return

    def score_window(self, window: Window) -> None:
        """Score one window, write its line and any alert it raises."""
        try:
            score = self.score(window_clip(window), len(window.frames))
        except Exception as error:  # one window failing is reported; the watch goes on
            self.summary.failed += 1
            self.emit({"event": "error", "source": self.source, "window": window.index, "start": round(window.start, 3),
                       "error": f"{type(error).__name__}: {error}"})
            return
        latency = time.monotonic() - window.closed_at
        self.summary.scored += 1
        self.summary.latencies.append(latency)
        self.emit(self.window_line(window, score, latency))

    def window_line(self, window: Window, score: Score, latency: float) -> dict:
        """The window's JSON line (faces with boxes and global tracks), raising alerts on the way."""
        position = {int(k): j for j, k in enumerate(score.frame_index)}
        firsts: dict[int, np.ndarray] = {}
        lasts: dict[int, np.ndarray] = {}
        for face in score.faces:  # faces come frame by frame
            firsts.setdefault(face.track, np.asarray(face.box, np.float64))
            lasts[face.track] = np.asarray(face.box, np.float64)
        joined = self.joiner.join(window.index, firsts, lasts)
        faces = [{"time": round(window.times[position[face.frame]], 3), "box": list(face.box),
                  "track": joined[face.track].id, "score": round(face.score, 4)} for face in score.faces]
        tracks = []
        for track in score.tracks:
            whole = joined[track.id]
            if track.score >= self.config.fake_at:
                whole.since = window.start if whole.streak == 0 else whole.since
                whole.streak += 1
            else:
                whole.streak, whole.alerted = 0, False
            tracks.append({"id": whole.id, "score": round(track.score, 4), "faces": track.faces})
            if whole.streak >= self.config.alert_after and not whole.alerted:
                whole.alerted = True
                self.summary.alerts += 1
                self.emit({"event": "alert", "window": window.index, "time": round(window.end, 3),
                            "since": round(whole.since, 3), "track": whole.id, "score": round(track.score, 4),
                            "windows": whole.streak, "source": self.source})
        return {"event": "window", "source": self.source, "window": window.index, "start": round(window.start, 3),
                "end": round(window.end, 3), "latency": round(latency, 3), "frames": len(window.frames),
                "verdict": score.verdict, "score": None if np.isnan(score.score) else round(score.score, 4),
                "faces": faces, "tracks": tracks, "dropped": self.summary.dropped}


def read_sources(path: Path) -> list[str]:
    """The sources listed in a file, one per line (blank lines and ``#`` comments skipped)."""
    lines = [line.strip() for line in Path(path).read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def watch_all(sources: list[str], score_for: Callable[[], Callable[[bytes, int], Score]], config: WatchConfig,
              emit: Callable[[dict], None]) -> tuple[list[Watch], Callable[[], dict[str, Summary]]]:
    """A ``Watch`` per source, each in its own thread with its own scorer (``score_for()``); returns the watches
    (to ``stop``) and a function that waits for them all and gives each source's summary."""
    watches = [Watch(source, score_for(), config, emit) for source in sources]
    summaries: dict[str, Summary] = {}
    threads = [threading.Thread(target=lambda w=w: summaries.__setitem__(w.source, w.run()), name=f"watch-{k}")
               for k, w in enumerate(watches)]
    for thread in threads:
        thread.start()

    def wait() -> dict[str, Summary]:
        for thread in threads:
            while thread.is_alive():
                thread.join(0.5)  # in short waits, so that the main thread still takes signals
        return summaries

    return watches, wait


class Sink:
    """Where lines go: stdout and/or a file (one JSON object per line, flushed), alerts also POSTed to a webhook
    (a failed POST is reported on the next line, never fatal)."""

    def __init__(self, out: Path | None = None, webhook: str | None = None, stdout: bool = True,
                 write: Callable[[str], Any] = print) -> None:
        self.file = open(out, "a", encoding="utf-8") if out else None  # closed by close()
        self.webhook, self.stdout, self.write = webhook, stdout, write
        self.lock = threading.Lock()

    def __call__(self, line: dict) -> None:
        text = json.dumps(line, separators=(",", ":"))
        with self.lock:
            if self.stdout:
                self.write(text)
            if self.file:
                self.file.write(text + "\n")
                self.file.flush()
        if line.get("event") == "alert" and self.webhook:
            self.post(line)

    def post(self, alert: dict) -> None:
        """POST the alert as JSON to the webhook."""
        request = urllib.request.Request(self.webhook, json.dumps(alert).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=5):
                pass
        except OSError as error:
            self({"event": "webhook_failed", "webhook": self.webhook, "error": str(error)})

    def close(self) -> None:
        """Close the file."""
        if self.file:
            self.file.close()
