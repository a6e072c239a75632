"""From per-frame embeddings to the answer a moderation system gets: frame scores, a video score, a verdict.

One implementation for the Triton ``cluster_classifier`` step and the in-process pipeline. Frames without a face
score NaN and stay out of the video score (the mean of the face frames' scores); a video with no face at all is
``no_face``, not a guess.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

VERDICTS = ("fake", "real", "uncertain", "no_face")


@dataclass(frozen=True)
class VideoResult:
    """What a video gets: its score (NaN without faces), the frame scores and the verdict."""

    video_score: float
    frame_scores: np.ndarray
    verdict: str


@dataclass(frozen=True)
class VideoScorer:
    """The score rule and thresholds of an exported model (``classifier.json``)."""

    rule: str  # "cluster" (CDNet's centres) or "logit" (the stage-1 head)
    center_real: np.ndarray
    center_fake: np.ndarray
    cluster_scale: float
    fake_threshold: float
    real_threshold: float

    @classmethod
    def from_parameters(cls, parameters: dict) -> VideoScorer:
        """Read the fields ``dfguard export`` writes into ``classifier.json``."""
        return cls(parameters["score"], np.asarray(parameters["center_real"], np.float64),
                   np.asarray(parameters["center_fake"], np.float64), float(parameters["cluster_scale"]),
                   float(parameters["thresholds"]["fake"]), float(parameters["thresholds"]["real"]))

    def frame_scores(self, embeddings: np.ndarray, logits: np.ndarray) -> np.ndarray:
        """P(fake) per frame: ``sigmoid(scale·(d_real − d_fake)/‖C_fake − C_real‖²)`` or ``sigmoid(logit)``."""
        if self.rule == "cluster":
            e = embeddings.astype(np.float64)
            to_real = ((e - self.center_real) ** 2).sum(1)
            to_fake = ((e - self.center_fake) ** 2).sum(1)
            spread = max(float(((self.center_fake - self.center_real) ** 2).sum()), 1e-12)
            return 1 / (1 + np.exp(-self.cluster_scale * (to_real - to_fake) / spread))
        return 1 / (1 + np.exp(-logits.astype(np.float64).reshape(-1)))

    def score(self, embeddings: np.ndarray, logits: np.ndarray, face_found: np.ndarray) -> VideoResult:
        """Frame scores (NaN without a face), the mean over face frames, and the verdict."""
        found = face_found.astype(bool).reshape(-1)
        scores = np.full(len(found), np.nan)
        if found.any():
            scores[found] = self.frame_scores(embeddings[found], logits.reshape(-1)[found])
        if not found.any():
            return VideoResult(float("nan"), scores, "no_face")
        video = float(scores[found].mean())
        verdict = "fake" if video >= self.fake_threshold else "real" if video <= self.real_threshold else "uncertain"
        return VideoResult(video, scores, verdict)
