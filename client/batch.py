"""``dfguard score``: score many videos and images, N in flight, one record per input, resumable.

A scorer turns ``(path, bytes)`` into a ``dfguard.answer.Score``: over gRPC (``RemoteScorer``, one client per
worker thread) or any other callable (``dfguard.pipeline.LocalScorer`` scores in process; the CLI passes it in, so
the client never imports the pipeline). Workers read, hash and score;
only the main thread writes records, so the results file never sees two writers.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, as_completed, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

import numpy as np

from dfguard.answer import Score, Update

from .grpc_client import RETRYABLE, Connection, DeepfakeClient, RetryPolicy, ScoringError
from .inputs import media_kind
from .replicas import Replicas
from .results import STATUSES, Record, ResultsFile


class RemoteScorer:
    """Scores over gRPC on one server or several (``urls``; default the connection's), a ``DeepfakeClient`` per
    thread and server. Each request goes to the least busy server; on a transient error it is resent, to another
    server when there is one, for at most ``connection.retry.max_attempts`` sends in all."""

    def __init__(self, connection: Connection, num_frames: int | None = None, urls: list[str] | None = None,
                 on_update: Callable[[str, Update], None] | None = None) -> None:
        self.connection, self.num_frames, self.on_update = connection, num_frames, on_update
        self.replicas = Replicas(urls or [connection.url], connection.retry)
        # each client sends once: resending is decided here, across servers
        self._once = [replace(connection, url=r.url, retry=RetryPolicy(max_attempts=1))
                      for r in self.replicas.replicas]
        self._local = threading.local()

    def _client(self, index: int) -> DeepfakeClient:
        clients = self._local.__dict__.setdefault("clients", {})
        if index not in clients:
            clients[index] = DeepfakeClient(self._once[index])
        return clients[index]

    def __call__(self, kind: str, data: bytes, name: str = "") -> Score:
        sends = 0
        while True:
            index = self.replicas.acquire()
            sends += 1
            client = self._client(index)
            try:
                if kind == "image":
                    score = client.score_image(data)
                elif self.on_update is None:
                    score = client.score_video(data, self.num_frames)
                else:
                    score = self.streamed(client, data, name)
            except ScoringError as error:
                transient = error.status in RETRYABLE
                self.replicas.release(index, failed=transient)
                if not transient or sends >= self.connection.retry.max_attempts:
                    raise ScoringError(str(error), error.status, sends) from error
                continue
            self.replicas.release(index, failed=False)
            return replace(score, attempts=sends)

    def streamed(self, client: DeepfakeClient, data: bytes, name: str) -> Score:
        """The video through ``deepfake_stream``, each update given to ``on_update``; the final answer."""
        for update in client.stream(data, self.num_frames):
            self.on_update(name, update)
            if update.final:
                return update.score
        raise ScoringError(f"{name}: the stream ended without a final answer", "StatusCode.UNKNOWN", 1)


def update_line(name: str, update: Update) -> str:
    """One line of ``dfguard score --stream``: the frames and faces an update adds and the tracks as they stand,
    or the video's final answer."""
    score = update.score
    if update.final:
        return (f"{name}: final: {score.verdict}, P(fake) {score.score:.3f}, {len(score.frame_index)} frames, "
                f"{len(score.faces)} faces, {len(score.tracks)} tracks")
    tracks = ", ".join(f"#{t.id} {t.score:.3f} ({t.faces})" for t in score.tracks) or "none"
    return (f"{name}: frames {score.frame_index[0]}-{score.frame_index[-1]}: {len(score.faces)} faces; tracks "
            f"P(fake) (faces): {tracks}; so far {score.verdict} {score.score:.3f}")


class Scorer(Protocol):
    """Scores one input: its kind (``video`` or ``image``), its bytes and its name (for what it prints)."""

    def __call__(self, kind: str, data: bytes, name: str = "") -> Score: ...


@dataclass
class Summary:
    """What a run did: counts by status over all inputs (skipped ones by their earlier record), flagged ones
    (``Record.is_flagged`` at this run's ``flag_at``, earlier records included), and the speed of what was
    scored now."""

    flag_at: float = 0.5
    total: int = 0
    skipped: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))
    flagged: int = 0
    seconds: float = 0.0

    def add(self, record: Record, *, skipped: bool) -> None:
        """Count one input's record."""
        self.total += 1
        self.skipped += skipped
        self.counts[record.status] += 1
        self.flagged += record.is_flagged(self.flag_at)

    @property
    def scored(self) -> int:
        """Inputs scored in this run (not taken from an earlier record)."""
        return self.total - self.skipped

    @property
    def rate(self) -> float:
        """Inputs scored per second in this run."""
        return self.scored / self.seconds if self.seconds > 0 else 0.0

    @property
    def failed(self) -> bool:
        """Any input ended in an error."""
        return self.counts["error"] > 0

    def text(self, out: Path) -> str:
        """A few lines for the terminal."""
        return (f"{self.total} inputs: {self.counts['ok']} scored, {self.counts['no_face']} without a face, "
                f"{self.counts['error']} failed; {self.flagged} flagged (score ≥ {self.flag_at}).\n"
                f"{self.scored} scored now in {self.seconds:.1f} s ({self.rate:.2f}/s), {self.skipped} already in "
                f"{out}.")


def sha256_of(data: bytes) -> str:
    """The content hash that, with the path, identifies an input across runs."""
    return hashlib.sha256(data).hexdigest()


def make_record(path: Path, digest: str, kind: str, outcome: Score | Exception, seconds: float) -> Record:
    """The record of one input: its score, or the error that stopped it."""
    if isinstance(outcome, Exception):
        message = str(outcome) or type(outcome).__name__
        attempts = getattr(outcome, "attempts", None)
        return Record(str(path), digest, kind, "error", attempts=attempts, seconds=round(seconds, 3), error=message)
    found = not math.isnan(outcome.score)
    return Record(str(path), digest, kind, "ok" if found else "no_face",
                  score=outcome.score if found else None, verdict=outcome.verdict,
                  face_count=len(outcome.faces),
                  frame_index=[int(i) for i in outcome.frame_index],
                  frame_scores=[None if math.isnan(s) else round(float(s), 6) for s in outcome.frame_scores],
                  model=outcome.model, model_version=outcome.model_version, attempts=outcome.attempts,
                  seconds=round(seconds, 3), faces=tuple(face.rounded() for face in outcome.faces),
                  tracks=tuple(track.rounded() for track in outcome.tracks))


def score_one(path: Path, scorer: Scorer, done: dict[tuple[str, str], Record]) -> tuple[Record, bool]:
    """Read, hash and (unless ``done`` has it) score one input; returns its record and whether it was skipped.
    Never raises: whatever goes wrong becomes the input's error record."""
    start = time.perf_counter()
    kind = media_kind(path) or "video"
    unreadable: OSError | None = None
    try:
        data = path.read_bytes()
    except OSError as error:  # recorded with an empty hash, and skipped like any recorded input on a rerun
        data, unreadable = b"", error
    digest = "" if unreadable else sha256_of(data)
    if (str(path), digest) in done:
        return done[(str(path), digest)], True
    try:
        outcome: Score | Exception = unreadable or scorer(kind, data, str(path))
    except Exception as error:  # every failure is recorded; the run goes on
        outcome = error
    return make_record(path, digest, kind, outcome, time.perf_counter() - start), False


def bounded_map(function: Callable[[Path], tuple[Record, bool]], paths: list[Path],
                concurrency: int) -> Iterator[tuple[Record, bool]]:
    """``function`` over ``paths`` with at most ``concurrency`` calls in flight, results as they finish."""
    pending: set[Future] = set()
    queue = iter(paths)
    with ThreadPoolExecutor(concurrency) as pool:
        for path in queue:
            pending.add(pool.submit(function, path))
            if len(pending) >= concurrency:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                yield from (f.result() for f in finished)
        yield from (f.result() for f in as_completed(pending))


def score_files(paths: list[Path], scorer: Scorer, out: Path, *, concurrency: int = 4, flag_at: float = 0.5,
                retry_errors: bool = False, progress: bool = True, per_face: bool = False) -> Summary:
    """Score ``paths`` (made absolute: the key of a record is its absolute path and content hash) into the
    results file ``out`` (JSONL or CSV; ``per_face``: a CSV row per face), skipping inputs it already records;
    with ``retry_errors``, inputs whose record is an error are scored again (their old record is removed first, so
    each input keeps one record)."""
    from dfguard.progress import progress_bar

    paths = [path.resolve() for path in paths]
    results = ResultsFile(out, per_face=per_face)
    done = {record.key: record for record in results.open(outline=True)}  # skipped inputs are only counted
    if results.repaired:
        print(f"{out}: cut off a torn last record ({results.repaired} bytes) left by an interrupted run")
    if retry_errors:
        wanted = {str(path) for path in paths}
        failed = {key for key, record in done.items() if record.status == "error" and record.path in wanted}
        results.remove(failed)
        done = {key: record for key, record in done.items() if key not in failed}
    summary = Summary(flag_at)
    start = time.perf_counter()
    with progress_bar(total=len(paths), desc="scoring", unit="video", disable=not progress, smoothing=0.1) as bar:
        for record, skipped in bounded_map(lambda p: score_one(p, scorer, done), paths, concurrency):
            if not skipped:
                results.append(record)
            summary.add(record, skipped=skipped)
            bar.update()
            bar.set_postfix(failed=summary.counts["error"], flagged=summary.flagged, refresh=False)
    summary.seconds = time.perf_counter() - start
    return summary


def plot_results(out: Path, plots: Path, *, flag_at: float = 0.5, progress: bool = True) -> list[Path]:
    """Per-track score timelines, with a contact sheet of each track's faces (cut again from the input file), of
    every scored input of the results file ``out``, and a histogram of the video scores, into the folder ``plots``
    (``<name>-<hash8>.png``, ``scores.png``)."""
    from dfguard.progress import progress_bar
    from dfguard.visualize import plot_score_histogram, plot_tracks, track_crops

    records = [r for r in ResultsFile(out).open() if r.status != "error"]
    written = []
    for record in progress_bar(records, desc="plots", unit="plot", disable=not progress):
        # named by the file and a hash of its path: same-named files in different folders get their own plot
        name = f"{Path(record.path).stem}-{hashlib.sha256(record.path.encode()).hexdigest()[:8]}.png"
        try:
            crops = track_crops(face_frames(record), record.faces) if record.faces else None
            written.append(plot_tracks(record.frame_index or [], record.frame_scores or [], plots / name,
                                       faces=record.faces, tracks=record.tracks, crops=crops,
                                       title=Path(record.path).name, flag_at=flag_at, verdict=record.verdict or "",
                                       video_score=record.score))
        except (ValueError, OSError) as error:  # a moved file or a hand-edited record must not stop the others
            print(f"no plot for {record.path}: {error}")
    scores = [r.score for r in records if r.score is not None]
    written.append(plot_score_histogram(scores, plots / "scores.png", flag_at=flag_at))
    return written


def face_frames(record: Record) -> dict[int, np.ndarray]:
    """The frames of a record's faces, decoded again from its input file: video frame number → RGB frame."""
    from dfguard.image import read_image
    from dfguard.video import decode_frames

    data = Path(record.path).read_bytes()
    if record.kind != "video":
        return {0: read_image(data)}
    wanted = sorted({face.frame for face in record.faces or ()})
    return dict(zip(wanted, decode_frames(data, np.array(wanted)), strict=True))
