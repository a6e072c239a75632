"""In-process scoring: the ensemble's steps in one process, with the trained PyTorch model.

For users who just want a score (``dfguard score --local``), and as the reference the Triton ensemble must equal:
the same face search (``dfguard.faces.search``), crops, features and scoring rule, with the detector in ONNX
Runtime instead of the served ``face_detector``. Needs the ``train`` extra (torch, timm, mediapipe's weights); reads
the model and its serving spec through ``dfguard.inference``, never through training code.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dfguard.answer import Score, faces_and_tracks
from dfguard.faces.crops import crop_faces
from dfguard.faces.detect import in_process_detector
from dfguard.faces.search import FoundFaces, find_faces
from dfguard.faces.weights import detector_kind
from dfguard.inference.checkpoint import load_model
from dfguard.inference.features import model_inputs
from dfguard.inference.spec import ServingSpec
from dfguard.scoring import FacesResult
from dfguard.video import DEFAULT_FRAMES, read_frames


@dataclass(frozen=True)
class LocalResult:
    """What ``deepfake_video`` answers, in process: the scores (``FacesResult``), the faces they belong to
    (frame, box, track), the indices of the sampled frames in the video, and each face's fused embedding
    ``[N, D]`` (what the cluster rule measures against the centres; ``dfguard explain`` draws it)."""

    scores: FacesResult
    faces: FoundFaces
    frame_index: np.ndarray
    embeddings: np.ndarray

    def answer(self, model: str = "local") -> Score:
        """The result as the client's answer (``dfguard.answer.Score``), ``model`` naming what answered."""
        scores = self.scores
        faces, tracks = faces_and_tracks(scores.face_scores, self.faces.frame, self.faces.boxes, self.faces.track,
                                         scores.track_scores, self.frame_index)
        return Score(scores.video_score, scores.verdict, scores.frame_scores.astype(np.float32), self.frame_index,
                     model, "", 1, faces, tracks)


class LocalDetector:
    """Score videos with a training checkpoint: decode → faces → tracks → crops → DCT → model → scores and verdict.

    ``spec`` (an exported model's ``serving_spec.json``, read with ``read_spec``) brings the detector, track and
    verdict settings it was exported with, so ``--local`` answers as the served model does; it must come from
    the same checkpoint. Without one, the checkpoint's own spec with the default settings."""

    def __init__(self, checkpoint: Path, spec: ServingSpec | None = None) -> None:
        trained = load_model(checkpoint)
        if spec is not None:
            trained.check_spec(spec)
        self.model = trained.model
        self.spec = spec or trained.spec()
        self.scorer = self.spec.scorer()
        self.run_detector = in_process_detector(detector_kind(self.spec.detector.name))

    def score(self, video: bytes | Path, num_frames: int = DEFAULT_FRAMES) -> LocalResult:
        """The video's scores, its faces and the indices of the frames it looked at."""
        frames = read_frames(video, num_frames)
        return self.score_frames(frames.images, frames.indices)

    def score_image(self, image: bytes | Path) -> LocalResult:
        """One image scored as a one-frame video (what the ``deepfake_image`` ensemble answers)."""
        from dfguard.image import read_image

        return self.score_frames(read_image(image)[None], np.zeros(1, np.int64))

    @torch.no_grad()
    def score_frames(self, frames: np.ndarray, frame_index: np.ndarray) -> LocalResult:
        """RGB uint8 frames ``[F, H, W, 3]`` → faces → tracks → crops → DCT → model → scores and verdict."""
        faces = find_faces(list(frames), self.spec.detector, self.spec.tracks, self.run_detector)
        crops = crop_faces(list(frames), faces, self.spec.crop, rows=1)  # the ensemble's placeholder row too
        output = self.model(**model_inputs(crops.faces, crops.parts, self.spec.cutoff))
        embeddings = output.embedding.numpy()
        scores = self.scorer.score_faces(embeddings, output.logit.numpy(), faces.frame, faces.track, len(frames),
                                         self.spec.tracks)
        return LocalResult(scores, faces, np.asarray(frame_index, np.int64), embeddings[: len(faces)])


class LocalScorer:
    """A scorer for batch scoring (``dfguard.client.batch.score_files``) in this process: ``(kind, bytes)`` →
    ``Score`` with a training checkpoint, for users without a server (``dfguard score --local``)."""

    def __init__(self, checkpoint: Path, num_frames: int | None = None, spec: Path | None = None) -> None:
        from dfguard.inference.spec import read_spec

        self.detector = LocalDetector(checkpoint, read_spec(spec) if spec else None)
        self.num_frames = num_frames or DEFAULT_FRAMES
        self.model = f"local:{Path(checkpoint).name}"
        self._lock = threading.Lock()  # one model, one forward at a time

    def __call__(self, kind: str, data: bytes, name: str = "") -> Score:
        with self._lock:
            local = self.detector.score(data, self.num_frames) if kind == "video" else self.detector.score_image(data)
        return local.answer(self.model)
