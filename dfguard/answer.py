"""The answer about one video, in the one shape every part uses: its faces, its tracks and its score.

The gRPC client parses the served ensemble's outputs into it, the in-process pipeline builds it from its own
results, the results file of ``dfguard score`` stores it (a face and a track as JSON objects with these fields),
and the pictures (``dfguard.visualize``, ``dfguard explain``) draw it. NumPy only: it sits at the bottom layer, so
none of them imports another to share it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Face:
    """One face: the video frame it was found in (a value of ``Score.frame_index``), its box (x0, y0, x1, y1 in
    that frame's pixels), its track and P(fake)."""

    frame: int
    box: tuple[float, float, float, float]
    track: int
    score: float

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Face:
        """A face from its JSON object (as every version of the results file writes it)."""
        return cls(int(values["frame"]), tuple(float(v) for v in values["box"]), int(values["track"]),
                   float(values["score"]))

    def rounded(self) -> Face:
        """The face as a results file stores it: P(fake) to 6 digits (its box is at 0.01 px already,
        ``faces_and_tracks``)."""
        return Face(self.frame, self.box, self.track, round(self.score, 6))


@dataclass(frozen=True)
class Track:
    """One person in one shot: its id, P(fake) (the mean of its faces), how many faces, first and last frame."""

    id: int
    score: float
    faces: int
    first_frame: int
    last_frame: int

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Track:
        """A track from its JSON object (or a CSV row's top-track columns)."""
        return cls(int(values["id"]), float(values["score"]), int(values["faces"]), int(values["first_frame"]),
                   int(values["last_frame"]))

    def rounded(self) -> Track:
        """The track as a results file stores it: P(fake) to 6 digits."""
        return Track(self.id, round(self.score, 6), self.faces, self.first_frame, self.last_frame)


def top_track(tracks: tuple[Track, ...] | list[Track] | None) -> Track | None:
    """The track with the highest score (None without tracks): the one a video's score comes from."""
    return max(tracks or (), key=lambda t: t.score, default=None)


@dataclass(frozen=True)
class Score:
    """The answer for one video (or image): P(fake) of the video (the most suspicious track that counts; NaN when
    no face was found), its verdict (``fake``, ``real``, ``uncertain``, ``no_face``), per-frame scores (a
    frame's highest face score) with the indices of those frames in the video, every face and every track, which
    model answered, and how many sends it took."""

    score: float
    verdict: str
    frame_scores: np.ndarray
    frame_index: np.ndarray
    model: str
    model_version: str
    attempts: int = 1
    faces: tuple[Face, ...] = ()
    tracks: tuple[Track, ...] = ()

    @property
    def top_track(self) -> Track | None:
        """The track with the highest score (None without faces)."""
        return top_track(self.tracks)


def faces_and_tracks(face_scores: np.ndarray, face_frame: np.ndarray, face_box: np.ndarray, face_track: np.ndarray,
                     track_scores: np.ndarray, frame_index: np.ndarray) -> tuple[tuple[Face, ...], tuple[Track, ...]]:
    """``Face`` and ``Track`` records from per-face arrays (the ensemble's outputs, or the pipeline's results;
    ``face_frame``: positions among the sampled frames, mapped to video frames through ``frame_index``)."""
    faces = faces_of(face_scores, face_frame, face_box, face_track, frame_index)
    return faces, tracks_of(faces, track_scores)


def faces_of(face_scores: np.ndarray, face_frame: np.ndarray, face_box: np.ndarray, face_track: np.ndarray,
             frame_index: np.ndarray) -> tuple[Face, ...]:
    """``Face`` records from per-face arrays (``face_frame`` indexes ``frame_index``, the video frame numbers)."""
    frames = np.asarray(frame_index, np.int64)[np.asarray(face_frame, np.int64)]
    return tuple(Face(int(f), tuple(round(float(v), 2) for v in box), int(t), float(s))
                 for f, box, t, s in zip(frames, np.asarray(face_box).reshape(-1, 4), face_track, face_scores,
                                         strict=True))


def tracks_of(faces: tuple[Face, ...] | list[Face], track_scores: np.ndarray) -> tuple[Track, ...]:
    """``Track`` records: track ``k`` scores ``track_scores[k]`` and has the faces of ``faces`` whose track is k."""
    tracks = []
    for track_id, score in enumerate(np.asarray(track_scores, np.float64)):
        seen = [face.frame for face in faces if face.track == track_id]
        tracks.append(Track(track_id, float(score), len(seen), min(seen, default=-1), max(seen, default=-1)))
    return tuple(tracks)


@dataclass(frozen=True)
class Update:
    """One answer of a video scored as it is read (``deepfake_stream``). ``score.frame_scores``,
    ``score.frame_index`` and ``score.faces``: the frames and faces that settled since the last update;
    ``score.tracks``, ``score.score`` and ``score.verdict``: every track so far and the video as it stands (a track
    counts once it has its ``min_track_faces``). The ``final`` update covers every frame and face and equals the
    one-shot answer (``deepfake_video``) for the same frames."""

    score: Score
    final: bool
