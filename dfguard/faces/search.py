"""Every face of a video's sampled frames, found, capped and linked into tracks: one function for the ensemble's
``face_finder`` step, the in-process pipeline and ``dfguard prepare``, so all three see the same faces.

``find_faces`` runs the detector on each frame's windows (``dfguard.faces.tiles``) through a ``DetectorRun`` (the
served ``face_detector`` model, or ONNX Runtime in process), keeps the ``max_faces`` largest of each frame and
links them across frames (``dfguard.faces.tracks``). Every tile level runs only on key frames: each shot's first
and last sampled frame and every ``DetectorConfig.search_every``-th; a frame between gets the whole frame (large
faces, new ones included) and a window around each smaller face found in the key frames on either side. A small
face seen in no key frame (in view for less than ``search_every`` sampled frames, or missed there) is missed.
Faces are listed frame by frame, largest first within a frame.

``FaceStream`` is that search for frames that arrive in chunks (``deepfake_stream`` answering a long video as it
is read): it gives the same faces and tracks, each frame's as soon as the key frames on either side of it are
searched; ``find_faces_many`` is the stream read in one go.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .decode import RawDetections
from .detect import Detection, as_rgb, in_process_detector
from .settings import DetectorConfig, TrackConfig
from .tiles import DetectorRun, Window, merge_candidates, run_windows, tile_windows, windows_around
from .tracks import TrackLinker, shot_look
from .weights import detector_kind


@dataclass(frozen=True)
class FoundFaces:
    """The N faces of F sampled frames: ``detections[i]`` was found in sampled frame ``frame[i]`` and belongs to
    track ``track[i]`` (ids 0..T-1 in order of first appearance); ``frame_faces [F]``: faces per frame;
    ``track_counts [T]``: whether each track has enough faces to count for the verdict."""

    detections: tuple[Detection, ...]
    frame: np.ndarray
    track: np.ndarray
    frame_faces: np.ndarray
    track_counts: np.ndarray

    def __len__(self) -> int:
        return len(self.detections)

    @property
    def boxes(self) -> np.ndarray:
        """float32 ``[N, 4]``: each face's box (x0, y0, x1, y1) in its frame's pixels."""
        return np.array([d.box for d in self.detections], np.float32).reshape(-1, 4)

    def largest_per_frame(self) -> FoundFaces:
        """Only the largest face of each frame (the papers' protocol), tracks and counts kept as they were."""
        first = np.flatnonzero(np.r_[True, self.frame[1:] != self.frame[:-1]]) if len(self) else np.zeros(0, int)
        return FoundFaces(tuple(self.detections[i] for i in first), self.frame[first], self.track[first],
                          np.minimum(self.frame_faces, 1), self.track_counts)


def find_faces_many(videos: Sequence[Sequence[np.ndarray]], detector: DetectorConfig, tracks: TrackConfig,
                    run: DetectorRun, batch: int = 64, workers: int = 1) -> list[FoundFaces]:
    """``find_faces`` for several videos, their windows sent to ``run`` together (``batch`` at a time, from
    ``workers`` threads), in two rounds: every key frame's tiles and every other frame's whole frame first, then
    the windows around the faces of the key frames on either side of each other frame."""
    streams = [FaceStream(detector, tracks, len(video)) for video in videos]
    for stream, video in zip(streams, videos, strict=True):
        stream.add(video)
    search_streams(streams, run, batch, workers)
    return [stream.take().found for stream in streams]


def is_key_frame(index: int, shot_start: int, shot_ends: bool, every: int) -> bool:
    """Whether sampled frame ``index`` is searched at every tile level: the first and last frame of its shot
    (which began at ``shot_start``; ``shot_ends``: the next frame starts a shot, or there is none) and every
    ``every``-th frame of it."""
    return index == shot_start or shot_ends or (index - shot_start) % max(every, 1) == 0


def key_frames(starts: np.ndarray, every: int) -> np.ndarray:
    """``[F]`` bool: ``is_key_frame`` for each frame of a video (``starts``: where shots begin,
    ``dfguard.faces.tracks.shot_starts``)."""
    shot_start = np.maximum.accumulate(np.where(starts, np.arange(len(starts)), 0))
    ends = np.r_[starts[1:], True] if len(starts) else starts
    return np.array([is_key_frame(k, int(shot_start[k]), bool(ends[k]), every) for k in range(len(starts))], bool)


@dataclass
class _Pending:
    """A sampled frame read but not yet linked into tracks."""

    index: int
    image: np.ndarray
    start: bool
    shot_start: int
    plan: list[Window]
    key: bool | None = None  # known once the next frame is read (or the video ends)
    first: list[RawDetections] | None = None  # the first round's candidates
    found: list[Detection] | None = None  # the frame's faces: after the first round on a key frame, else the second


@dataclass(frozen=True)
class Settled:
    """Frames whose faces are final: ``images`` are sampled frames ``first``.. of the video, and ``found`` their
    faces (``found.frame``: indices among the video's sampled frames; ``found.track_counts``: every track so far)."""

    first: int
    images: list[np.ndarray]
    found: FoundFaces


class FaceStream:
    """The face search of one video whose sampled frames arrive in chunks, as a long video is read: the same faces
    and tracks as ``find_faces`` on all of them at once. A frame's faces settle once the key frames on either side
    of it are searched (at most ``search_every`` frames later, and at the end of the video). ``add`` frames, run
    ``search_streams`` (several streams' windows go to the detector together), ``take`` what settled."""

    def __init__(self, detector: DetectorConfig, tracks: TrackConfig, sampled_frames: int) -> None:
        self.detector, self.tracks, self.kind = detector, tracks, detector_kind(detector.name)
        self.total = sampled_frames
        self.linker = TrackLinker(tracks, sampled_frames)
        self.pending: list[_Pending] = []
        self.read = 0
        self.look: np.ndarray | None = None  # the last frame's shot layout
        self.shot_start = 0  # where the last frame's shot began
        self.before: list[Detection] = []  # faces of the last key frame linked
        self.settled: list[tuple[_Pending, list[Detection], list[int]]] = []

    def add(self, frames: Sequence[np.ndarray]) -> None:
        """Read the next sampled frames (RGB, gray or RGBA uint8)."""
        if self.read + len(frames) > self.total:
            raise ValueError(f"the video has {self.total} sampled frames; {self.read + len(frames)} were added")
        for frame in frames:
            image = as_rgb(frame)
            look = shot_look(image)
            start = self.look is None or float(look @ self.look) < self.tracks.min_shot_correlation
            if self.pending and self.pending[-1].key is None:
                self.pending[-1].key = self._key(self.pending[-1], start)
            self.shot_start = self.read if start else self.shot_start
            self.pending.append(_Pending(self.read, image, start, self.shot_start,
                                         tile_windows(*image.shape[:2], self.kind, self.detector.min_face_px)))
            self.look = look
            self.read += 1
        if self.read == self.total and self.pending and self.pending[-1].key is None:
            self.pending[-1].key = self._key(self.pending[-1], True)

    def _key(self, frame: _Pending, next_starts: bool) -> bool:
        return is_key_frame(frame.index, frame.shot_start, next_starts, self.detector.search_every)

    def first_round(self) -> list[_Pending]:
        """Frames whose key status is known and whose first round has not run."""
        return [f for f in self.pending if f.key is not None and f.first is None and f.found is None]

    def second_round(self) -> list[tuple[_Pending, list[np.ndarray]]]:
        """Frames between key frames whose key frames on both sides are searched, with those key frames' boxes."""
        ready, before = [], self.before
        for k, frame in enumerate(self.pending):
            if frame.key and frame.found is not None:
                before = frame.found
            elif frame.first is not None and frame.found is None:
                after = next((f for f in self.pending[k + 1:] if f.key), None)
                if after is None or after.found is None:
                    break
                ready.append((frame, [np.asarray(d.box) for d in (*before, *after.found)]))
        return ready

    def link(self) -> None:
        """Link the settled frames at the head of the queue into tracks."""
        while self.pending and self.pending[0].found is not None:
            frame = self.pending.pop(0)
            faces, ids = self.linker.add(frame.image, frame.found, frame.start)
            if frame.key:
                self.before = frame.found
            self.settled.append((frame, faces, ids))

    def take(self) -> Settled:
        """The frames settled since the last ``take``, and their faces."""
        taken, self.settled = self.settled, []
        rows = [(frame.index, face, track) for frame, faces, ids in taken for face, track in zip(faces, ids,
                                                                                                 strict=True)]
        found = FoundFaces(tuple(face for _, face, _ in rows), np.array([k for k, _, _ in rows], np.int32),
                           np.array([t for _, _, t in rows], np.int32),
                           np.array([len(faces) for _, faces, _ in taken], np.int32),
                           np.array([t.counts(self.tracks, self.total) for t in self.linker.tracks()], bool))
        return Settled(taken[0][0].index if taken else self.read, [frame.image for frame, _, _ in taken], found)

    @property
    def done(self) -> bool:
        """Whether every sampled frame has been read and linked."""
        return self.read == self.total and not self.pending


def search_streams(streams: Sequence[FaceStream], run: DetectorRun, batch: int = 64, workers: int = 1) -> None:
    """Run the detector on whatever the streams' frames need now, every stream's windows together, and link the
    frames that settle: the first round (a key frame's tiles, another frame's whole frame), then the second (the
    windows around the faces of the key frames on either side)."""
    if not streams:
        return
    kind, min_face_px = streams[0].kind, streams[0].detector.min_face_px
    options = {"min_score": streams[0].detector.min_score, "batch": batch, "workers": workers}
    first = [frame for stream in streams for frame in stream.first_round()]
    candidates = run_windows([f.image for f in first], [f.plan if f.key else f.plan[:1] for f in first], kind, run,
                             **options)
    for frame, found in zip(first, candidates, strict=True):
        if frame.key:
            frame.found = merge_candidates(found, min_face_px)
        else:
            frame.first = found
    second = [ready for stream in streams for ready in stream.second_round()]
    # a frame whose plan is the whole frame alone is searched in full already
    nearby = [windows_around(boxes, *f.image.shape[:2], kind) if len(f.plan) > 1 else [] for f, boxes in second]
    more = run_windows([f.image for f, _ in second], nearby, kind, run, **options)
    for (frame, _), extra in zip(second, more, strict=True):
        frame.found = merge_candidates(frame.first + extra, min_face_px)
    for stream in streams:
        stream.link()


def find_faces(frames: Sequence[np.ndarray], detector: DetectorConfig, tracks: TrackConfig, run: DetectorRun,
               batch: int = 64) -> FoundFaces:
    """Every face (up to ``max_faces`` per frame) of one video's RGB uint8 frames, with its track."""
    return find_faces_many([frames], detector, tracks, run, batch)[0]


def detect_faces(image: np.ndarray, detector: DetectorConfig = DetectorConfig(), run: DetectorRun | None = None
                 ) -> list[Detection]:
    """Every face in one RGB uint8 ``[H, W, 3]`` image (gray and RGBA accepted), best first, found as the service
    finds them (``DetectorConfig``'s defaults: full range on the whole image and on overlapping tiles, faces from
    ``min_face_px``), capped at ``TrackConfig.max_faces``; ``run``: the detector, in this process by default."""
    run = run or in_process_detector(detector_kind(detector.name))
    found = find_faces([image], detector, TrackConfig(), run)
    return sorted(found.detections, key=lambda face: -face.score)
