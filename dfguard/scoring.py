"""From per-frame embeddings to the answer a moderation system gets: frame scores, a video score, a verdict.

The one definition of the scoring rule, for the Triton ``cluster_classifier`` step, the in-process pipeline,
evaluation and training's validation alike. Each face gets P(fake); a track (one person in one shot) the mean of
its faces; the video the highest score among the tracks seen often enough to count, so a forged person beside
real ones is flagged; a frame the highest score of its faces (NaN without one). A video where no track counts is
``no_face``, not a guess. A fitted ``Calibration`` (``dfguard.calibration``) then turns each of these raw scores
into a probability, and the verdict thresholds apply to the calibrated video score.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dfguard.calibration import Calibration
from dfguard.faces.settings import TrackConfig

VERDICTS = ("fake", "real", "uncertain", "no_face")
CLUSTER_SCALE = 4.0  # slope of the cluster score in units of the centres' squared distance
RULE_OF_STAGE = {1: "logit", 2: "cluster"}  # the stage a model was trained to decides how it scores
SCORE_RULES = tuple(RULE_OF_STAGE.values())


@dataclass(frozen=True)
class VerdictThresholds:
    """How a video score becomes a ``VERDICT``: ``fake`` at or above ``fake_at``, ``real`` at or below
    ``real_at``, ``uncertain`` between. (Flagging in batch scoring is a separate, single ``flag_at``.)"""

    fake_at: float = 0.6
    real_at: float = 0.4

    def __post_init__(self) -> None:
        if not 0.0 <= self.real_at <= self.fake_at <= 1.0:
            raise ValueError(f"verdict thresholds need 0 <= real_at <= fake_at <= 1, got real_at {self.real_at}, "
                             f"fake_at {self.fake_at}")

    def verdict(self, video_score: float) -> str:
        """``fake``, ``real`` or ``uncertain`` for a video score (``no_face`` is decided before, by the caller)."""
        return "fake" if video_score >= self.fake_at else "real" if video_score <= self.real_at else "uncertain"


@dataclass(frozen=True)
class VideoScorer:
    """The score rule of a trained model, its calibration and verdict thresholds (a serving spec's ``scorer()``)."""

    rule: str  # "cluster" (CDNet's centres) or "logit" (the stage-1 head)
    center_real: np.ndarray
    center_fake: np.ndarray
    cluster_scale: float = CLUSTER_SCALE
    thresholds: VerdictThresholds = field(default_factory=VerdictThresholds)
    calibration: Calibration = field(default_factory=Calibration)

    def __post_init__(self) -> None:
        if self.rule not in SCORE_RULES:
            raise ValueError(f"score rule must be one of {SCORE_RULES}, got {self.rule!r}")

    def frame_scores(self, embeddings: np.ndarray, logits: np.ndarray) -> np.ndarray:
        """P(fake) per frame: ``sigmoid(scale·(d_real − d_fake)/‖C_fake − C_real‖²)`` (above 0.5 exactly when the
        fake centre is the nearer one, CDNet's eq. 5; ``scale`` is a fixed slope, not fitted) or ``sigmoid(logit)``."""
        if self.rule == "cluster":
            e = np.asarray(embeddings, np.float64)
            real, fake = np.asarray(self.center_real, np.float64), np.asarray(self.center_fake, np.float64)
            to_real = ((e - real) ** 2).sum(1)
            to_fake = ((e - fake) ** 2).sum(1)
            spread = max(float(((fake - real) ** 2).sum()), 1e-12)
            return 1 / (1 + np.exp(-self.cluster_scale * (to_real - to_fake) / spread))
        return 1 / (1 + np.exp(-np.asarray(logits, np.float64).reshape(-1)))

    def score_faces(self, embeddings: np.ndarray, logits: np.ndarray, face_frame: np.ndarray,
                    face_track: np.ndarray, num_frames: int, tracks: TrackConfig) -> FacesResult:
        """Score the N faces listed by ``face_frame``/``face_track`` (the first N rows of ``embeddings`` and
        ``logits``; rows after them are padding), aggregate them and calibrate (``aggregate_faces``); a track
        counts when ``tracks.counts`` says so."""
        count = len(face_track)
        scores = self.frame_scores(embeddings[:count], np.asarray(logits).reshape(-1)[:count])
        faces_per_track = np.bincount(np.asarray(face_track, np.int64))
        counts = np.array([tracks.counts(int(n), num_frames) for n in faces_per_track], bool)
        return aggregate_faces(scores, face_frame, face_track, num_frames, counts, self.thresholds, self.calibration)


@dataclass(frozen=True)
class FacesResult:
    """What a video with several faces per frame gets: per face, per frame, per track and for the whole video.

    ``frame_scores [F]``: the highest face score of each frame (NaN without a face); ``track_scores [T]``: the mean
    of each track's faces; ``video_score``: the highest score among the tracks that count (NaN, verdict
    ``no_face``, when none does)."""

    face_scores: np.ndarray
    frame_scores: np.ndarray
    track_scores: np.ndarray
    video_score: float
    verdict: str


def aggregate_faces(face_scores: np.ndarray, face_frame: np.ndarray, face_track: np.ndarray, num_frames: int,
                    track_counts: np.ndarray, thresholds: VerdictThresholds = VerdictThresholds(),
                    calibration: Calibration = Calibration()) -> FacesResult:
    """The rule for many faces: a forged person is flagged even beside real ones, so the video takes its most
    suspicious person (the highest track score among the tracks that count), and a person's score is the mean
    over their faces, as a one-face video's score is the mean over its frames (which this rule reproduces).
    The raw scores are aggregated, then each is calibrated (an increasing map: the video is still its highest
    track) and the verdict read from the calibrated video score."""
    face_scores = np.asarray(face_scores, np.float64).reshape(-1)
    face_frame, face_track = np.asarray(face_frame, np.int64).reshape(-1), np.asarray(face_track, np.int64).reshape(-1)
    track_counts = np.asarray(track_counts, bool).reshape(-1)
    if not len(face_scores) == len(face_frame) == len(face_track):
        raise ValueError(f"{len(face_scores)} face scores for {len(face_frame)} frames and {len(face_track)} tracks")
    frame_scores = np.full(num_frames, np.nan)
    np.fmax.at(frame_scores, face_frame, face_scores)  # fmax: NaN (no face yet) gives way to any score
    sums = np.bincount(face_track, face_scores, minlength=len(track_counts))
    counts = np.bincount(face_track, minlength=len(track_counts))
    track_scores = np.divide(sums, counts, out=np.full(len(track_counts), np.nan), where=counts > 0)
    eligible = track_scores[track_counts & (counts > 0)]
    face_scores, frame_scores, track_scores = map(calibration.apply, (face_scores, frame_scores, track_scores))
    if not len(eligible):
        return FacesResult(face_scores, frame_scores, track_scores, float("nan"), "no_face")
    video = float(calibration.apply(eligible.max()))
    return FacesResult(face_scores, frame_scores, track_scores, video, thresholds.verdict(video))
