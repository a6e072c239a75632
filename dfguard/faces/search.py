"""Every face of a video's sampled frames, found, capped and linked into tracks: one function for the ensemble's
``face_finder`` step, the in-process pipeline and ``dfguard prepare``, so all three see the same faces.

``find_faces`` runs the detector on each frame's windows (``dfguard.faces.tiles``) through a ``DetectorRun`` (the
served ``face_detector`` model, or ONNX Runtime in process), keeps the ``max_faces`` largest of each frame and
links them across frames (``dfguard.faces.tracks``). Faces are listed frame by frame, largest first within a frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .detect import Detection
from .settings import DetectorConfig, TrackConfig
from .tiles import DetectorRun, detect_in_windows
from .tracks import link_tracks
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
    ``workers`` threads)."""
    kind = detector_kind(detector.name)
    frames = [frame for video in videos for frame in video]
    found = detect_in_windows(frames, kind, run, min_face_px=detector.min_face_px, min_score=detector.min_score,
                              batch=batch, workers=workers)
    results, start = [], 0
    for video in videos:
        results.append(link_faces(video, found[start:start + len(video)], tracks))
        start += len(video)
    return results


def find_faces(frames: Sequence[np.ndarray], detector: DetectorConfig, tracks: TrackConfig, run: DetectorRun,
               batch: int = 64) -> FoundFaces:
    """Every face (up to ``max_faces`` per frame) of one video's RGB uint8 frames, with its track."""
    return find_faces_many([frames], detector, tracks, run, batch)[0]


def link_faces(frames: Sequence[np.ndarray], detections: Sequence[Sequence[Detection]], config: TrackConfig
               ) -> FoundFaces:
    """Cap and link one video's detections into tracks, as ``FoundFaces``."""
    capped, linked = link_tracks(frames, detections, config)
    track_of = {(k, j): track.id for track in linked for k, j in zip(track.frames, track.faces, strict=True)}
    order = [(k, j) for k, faces in enumerate(capped) for j in range(len(faces))]
    return FoundFaces(tuple(capped[k][j] for k, j in order), np.array([k for k, _ in order], np.int32),
                      np.array([track_of[key] for key in order], np.int32),
                      np.array([len(faces) for faces in capped], np.int32),
                      np.array([t.counts(config, len(frames)) for t in linked], bool))
