"""Faces linked across the sampled frames of a video into tracks: one track per person per shot.

Sampled frames lie far apart in time (32 frames over a minute: two seconds apart), so position alone is not enough:
a detection joins a track when its size is close (``max_scale``), its centre has not moved too far (``max_shift``
face sides) and it does not look unlike (the correlation of small zero-mean grey thumbnails of the two faces, at
least ``min_appearance``); among the candidates the cheapest pairs (shift plus appearance distance) are linked
first, each track and detection at most once per frame. The thumbnail ranks candidates but cannot tell people
apart: on real footage (51 clips, 1229 pairs of one person's faces a sampled frame or a few apart) one pair in a
hundred correlated under 0.32 and the lowest about 0, a turned head or a tilt, while faces of two people in one
frame correlated up to 0.82; a veto at 0.4 split one-person interviews into several tracks. So people are kept
apart by position, size, cuts and one face per track per frame. A cut ends every track: two sampled frames whose
8×5 grey layouts correlate less than ``min_shot_correlation`` (the coarse layout ignores exposure, texture and a
camera's pan, not a new scene; on the tests' filmed scenes, seeds 0-5, frames of one shot correlated 0.65 and up,
cuts -0.22 to 0.51: a cut between two alike layouts can go unseen, and then position and size still keep its people
apart). A track may skip ``max_gap`` frames where its face was missed. At most ``TrackConfig.faces_per_frame``
detections per frame (``max_faces``, fewer when many frames are sampled) are kept, the largest first: more is
capped, never an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from .detect import Detection
from .settings import TrackConfig

THUMBNAIL = 24  # side of the grey thumbnails compared for a face's appearance
SHOT_LAYOUT = (8, 5)  # width and height of the grey thumbnails compared for a cut


@dataclass(frozen=True)
class Track:
    """One person in one shot: ``frames[i]`` is the sampled frame of its ``i``-th face, ``faces[i]`` that face's
    index among the frame's (capped) detections."""

    id: int
    frames: tuple[int, ...]
    faces: tuple[int, ...]

    def counts(self, config: TrackConfig, sampled_frames: int) -> bool:
        """Whether the track counts for the verdict (``TrackConfig.counts``)."""
        return config.counts(len(self.frames), sampled_frames)


def cap_faces(detections: Sequence[Detection], max_faces: int) -> list[Detection]:
    """The ``max_faces`` largest detections (by box area), largest first."""
    area = lambda d: (d.box[2] - d.box[0]) * (d.box[3] - d.box[1])  # noqa: E731
    return sorted(detections, key=area, reverse=True)[:max_faces]


def shot_look(frame: np.ndarray) -> np.ndarray:
    """A frame's coarse layout for finding cuts: its 8×5 grey thumbnail, zero mean and unit norm."""
    return thumbnail(frame, (0, 0, frame.shape[1], frame.shape[0]), SHOT_LAYOUT)


def shot_starts(frames: Sequence[np.ndarray], min_correlation: float) -> np.ndarray:
    """``[F]`` bool: where a new shot begins (the first frame, and every frame whose ``shot_look`` correlates less
    than ``min_correlation`` with the previous frame's)."""
    looks = [shot_look(frame) for frame in frames]
    starts = np.zeros(len(frames), bool)
    starts[:1] = True
    for k in range(1, len(frames)):
        starts[k] = float(looks[k] @ looks[k - 1]) < min_correlation
    return starts


def thumbnail(frame: np.ndarray, box: Sequence[float], size: tuple[int, int] = (THUMBNAIL, THUMBNAIL)
              ) -> np.ndarray:
    """The appearance of a box of the frame (clipped to it): a small grey patch of ``size`` (width, height), flat,
    zero mean, unit norm, so that a dot product is a correlation."""
    height, width = frame.shape[:2]
    x0, y0 = int(max(np.floor(box[0]), 0)), int(max(np.floor(box[1]), 0))
    x1, y1 = int(min(np.ceil(box[2]), width)), int(min(np.ceil(box[3]), height))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return np.zeros(size[0] * size[1], np.float32)
    patch = frame[y0:y1, x0:x1]
    grey = cv2.cvtColor(patch, cv2.COLOR_RGB2GRAY) if patch.ndim == 3 else patch
    small = cv2.resize(grey, size, interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
    small -= small.mean()
    return small / max(float(np.linalg.norm(small)), 1e-6)


@dataclass
class _Open:
    """A track still being extended: its faces so far and its last face's box and thumbnail."""

    id: int
    frames: list[int]
    faces: list[int]
    box: np.ndarray
    look: np.ndarray


def link_cost(track: _Open, box: np.ndarray, look: np.ndarray, config: TrackConfig) -> float | None:
    """The cost of adding a face to a track (centre shift in face sides plus appearance distance), or None when
    it cannot belong to it."""
    shift = config.shift(track.box, box)
    appearance = float(track.look @ look)
    if shift is None or appearance < config.min_appearance:
        return None
    return shift + (1.0 - appearance)


class TrackLinker:
    """Links faces into tracks one sampled frame at a time, in order: the same tracks whether the frames come at
    once (``link_tracks``) or in chunks as a video is read (``dfguard.faces.search.FaceStream``). ``sampled_frames``:
    how many frames the video has in all (each keeps ``TrackConfig.faces_per_frame`` of them)."""

    def __init__(self, config: TrackConfig, sampled_frames: int) -> None:
        self.config, self.cap = config, config.faces_per_frame(sampled_frames)
        self.open: list[_Open] = []
        self.finished: list[_Open] = []
        self.next_frame = self.next_id = 0

    def add(self, frame: np.ndarray, detections: Sequence[Detection], start: bool) -> tuple[list[Detection], list[int]]:
        """Link the next frame's detections (``start``: a shot begins there); returns its capped detections,
        largest first, and the track id of each."""
        k, config = self.next_frame, self.config
        self.next_frame += 1
        faces = cap_faces(detections, self.cap)
        if start:
            self.finished += self.open
            self.open = []
        self.finished += [t for t in self.open if k - t.frames[-1] > config.max_gap + 1]
        self.open = [t for t in self.open if k - t.frames[-1] <= config.max_gap + 1]
        boxes = [np.asarray(face.box, np.float64) for face in faces]
        looks = [thumbnail(frame, face.box) for face in faces]
        pairs = sorted((cost, t, j) for t, track in enumerate(self.open) for j in range(len(faces))
                       if (cost := link_cost(track, boxes[j], looks[j], config)) is not None)
        ids = [-1] * len(faces)
        used_tracks = set()
        for _, t, j in pairs:
            if t in used_tracks or ids[j] >= 0:
                continue
            used_tracks.add(t)
            track = self.open[t]
            track.frames.append(k)
            track.faces.append(j)
            track.box, track.look = boxes[j], looks[j]
            ids[j] = track.id
        for j in range(len(faces)):
            if ids[j] < 0:
                self.open.append(_Open(self.next_id, [k], [j], boxes[j], looks[j]))
                ids[j] = self.next_id
                self.next_id += 1
        return faces, ids

    def tracks(self) -> list[Track]:
        """Every track so far (ids in order of first appearance), the open ones included."""
        every = sorted(self.finished + self.open, key=lambda t: t.id)
        return [Track(t.id, tuple(t.frames), tuple(t.faces)) for t in every]


def link_tracks(frames: Sequence[np.ndarray], detections: Sequence[Sequence[Detection]],
                config: TrackConfig = TrackConfig(), starts: np.ndarray | None = None
                ) -> tuple[list[list[Detection]], list[Track]]:
    """Cap each frame's detections and link them into tracks; returns the capped detections per frame and the
    tracks (ids in order of first appearance), every capped detection in exactly one track. ``starts``: where
    shots begin (``shot_starts``), computed when not given."""
    starts = shot_starts(frames, config.min_shot_correlation) if starts is None else starts
    linker = TrackLinker(config, len(frames))
    capped = [linker.add(frame, faces, bool(start))[0]
              for frame, faces, start in zip(frames, detections, starts, strict=True)]
    return capped, linker.tracks()
