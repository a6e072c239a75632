"""Every face of a video's sampled frames, found, capped and linked into tracks: one function for the ensemble's
``face_finder`` step, the in-process pipeline and ``dfguard prepare``, so all three see the same faces.

``find_faces`` runs the detector on each frame's windows (``dfguard.faces.tiles``) through a ``DetectorRun`` (the
served ``face_detector`` model, or ONNX Runtime in process), keeps the ``max_faces`` largest of each frame and
links them across frames (``dfguard.faces.tracks``). Every tile level runs only on key frames: each shot's first
and last sampled frame and every ``DetectorConfig.search_every``-th; a frame between gets the whole frame (large
faces, new ones included) and a window around each smaller face found in the key frames on either side. A small
face seen in no key frame (in view for less than ``search_every`` sampled frames, or missed there) is missed.
Faces are listed frame by frame, largest first within a frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .detect import Detection, as_rgb, in_process_detector
from .settings import DetectorConfig, TrackConfig
from .tiles import DetectorRun, merge_candidates, run_windows, tile_windows, windows_around
from .tracks import link_tracks, shot_starts
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
    kind = detector_kind(detector.name)
    videos = [[as_rgb(frame) for frame in video] for video in videos]
    starts = [shot_starts(video, tracks.min_shot_correlation) for video in videos]
    keys = [key_frames(video_starts, detector.search_every) for video_starts in starts]
    frames = [frame for video in videos for frame in video]
    is_key = np.concatenate(keys) if frames else np.zeros(0, bool)
    tiles = [tile_windows(*frame.shape[:2], kind, detector.min_face_px) for frame in frames]
    options = {"min_score": detector.min_score, "batch": batch, "workers": workers}
    candidates = run_windows(frames, [plan if key else plan[:1] for plan, key in zip(tiles, is_key, strict=True)],
                             kind, run, **options)
    keyed = [merge_candidates(c, detector.min_face_px) if key else [] for c, key in zip(candidates, is_key,
                                                                                          strict=True)]
    # a frame whose plan is the whole frame alone is searched in full already
    nearby = [windows_around(boxes, *frame.shape[:2], kind) if len(plan) > 1 else [] for frame, plan, boxes in
              zip(frames, tiles, neighbour_boxes(keyed, is_key), strict=True)]
    more = run_windows(frames, nearby, kind, run, **options)
    found = [faces if key else merge_candidates(first + extra, detector.min_face_px)
             for faces, key, first, extra in zip(keyed, is_key, candidates, more, strict=True)]
    results, start = [], 0
    for video, video_starts in zip(videos, starts, strict=True):
        results.append(link_faces(video, found[start:start + len(video)], tracks, video_starts))
        start += len(video)
    return results


def key_frames(starts: np.ndarray, every: int) -> np.ndarray:
    """``[F]`` bool: the frames searched at every tile level: each shot's first and last frame and every
    ``every``-th frame of it (``starts``: where shots begin, ``dfguard.faces.tracks.shot_starts``)."""
    index = np.arange(len(starts))
    shot_start = np.maximum.accumulate(np.where(starts, index, 0))
    last = np.r_[starts[1:], True] if len(starts) else starts
    return starts | last | ((index - shot_start) % max(every, 1) == 0)


def neighbour_boxes(found: Sequence[Sequence[Detection]], keys: np.ndarray) -> list[list[np.ndarray]]:
    """For each frame that is not a key frame, the boxes found in the nearest key frame before and after it
    (both in its shot: a shot's first and last frames are key frames); nothing for key frames."""
    index = np.arange(len(keys))
    before = np.maximum.accumulate(np.where(keys, index, 0))
    after = np.minimum.accumulate(np.where(keys, index, len(keys))[::-1])[::-1]
    return [[] if keys[k] else [np.asarray(d.box) for d in (*found[before[k]], *found[after[k]])]
            for k in index]


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


def link_faces(frames: Sequence[np.ndarray], detections: Sequence[Sequence[Detection]], config: TrackConfig,
               starts: np.ndarray | None = None) -> FoundFaces:
    """Cap and link one video's detections into tracks, as ``FoundFaces`` (``starts``: where its shots begin,
    when already known)."""
    capped, linked = link_tracks(frames, detections, config, starts)
    track_of = {(k, j): track.id for track in linked for k, j in zip(track.frames, track.faces, strict=True)}
    order = [(k, j) for k, faces in enumerate(capped) for j in range(len(faces))]
    return FoundFaces(tuple(capped[k][j] for k, j in order), np.array([k for k, _ in order], np.int32),
                      np.array([track_of[key] for key in order], np.int32),
                      np.array([len(faces) for faces in capped], np.int32),
                      np.array([t.counts(config, len(frames)) for t in linked], bool))
